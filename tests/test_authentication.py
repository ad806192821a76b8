"""Token verification both ways: real RS256 tokens (a test key, its certificate served as Google's, no
network) and emulator mode; every kind of bad token gets a 401 whose code says which."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
import responses
from conftest import PROJECT, Api, World, create_body
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from firebase_admin._token_gen import ID_TOKEN_CERT_URI
from google.auth import crypt
from google.auth import jwt as google_jwt
from videocall.core.auth import FirebaseAuthenticator, extract_token
from videocall.core.errors import TokenExpired, TokenInvalid, TokenMissing
from videocall.core.settings import Settings, SettingsError
from videocall.local.devtools import emulator_id_token

KID = "test-key-1"


def _key_and_cert() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem_key, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def google_keys() -> dict[str, tuple[str, str]]:
    """Google's signing key (ours, for the test) and a key nobody trusts."""
    return {"google": _key_and_cert(), "forger": _key_and_cert()}


def signed_token(pem_key: str, uid: str, *, project: str = PROJECT, exp_in: int = 3600, kid: str = KID) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now - 10,
        "sub": uid,
        "user_id": uid,
        "iat": now - 10 if exp_in > 0 else now - 7200,
        "exp": now + exp_in,
        "firebase": {"sign_in_provider": "password"},
    }
    return google_jwt.encode(crypt.RSASigner.from_string(pem_key, key_id=kid), payload).decode()


@pytest.fixture
def real_mode(aws, monkeypatch: pytest.MonkeyPatch, google_keys) -> Iterator[responses.RequestsMock]:
    """Production verification: no emulator, Google's certificates served locally."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            ID_TOKEN_CERT_URI,
            json={KID: google_keys["google"][1]},
            headers={"Cache-Control": "public, max-age=3600"},
        )
        yield mock


@pytest.fixture
def real_api(runtime, real_mode, monkeypatch: pytest.MonkeyPatch) -> Api:
    settings = Settings.from_env({"STAGE": "test", "FIREBASE_PROJECT_ID": PROJECT})
    monkeypatch.setattr(runtime, "authenticator", FirebaseAuthenticator(settings))
    return Api()


def test_rs256_token_signed_by_google_is_accepted(real_api: Api, world: World, google_keys):
    token = signed_token(google_keys["google"][0], world.provider.firebase_uid)
    reply = real_api.legacy(create_body(), token=token)
    assert reply.status == 200, reply.body


def test_forged_token_is_401_token_invalid(real_api: Api, world: World, google_keys):
    token = signed_token(google_keys["forger"][0], world.provider.firebase_uid)
    reply = real_api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_invalid")


def test_unsigned_emulator_token_is_refused_outside_emulator_mode(real_api: Api, world: World):
    reply = real_api.legacy(create_body(), token=world.provider.token)
    assert (reply.status, reply.code) == (401, "token_invalid")


def test_expired_rs256_token_is_401_token_expired(real_api: Api, world: World, google_keys):
    token = signed_token(google_keys["google"][0], world.provider.firebase_uid, exp_in=-3600)
    reply = real_api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_expired")


def test_token_for_another_project_is_401(real_api: Api, world: World, google_keys):
    token = signed_token(google_keys["google"][0], world.provider.firebase_uid, project="someone-else")
    reply = real_api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_invalid")


def test_valid_token_of_an_unregistered_user_is_401_user_not_registered(real_api: Api, world: World, google_keys):
    token = signed_token(google_keys["google"][0], "nobody-we-know")
    reply = real_api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "user_not_registered")


# --- emulator mode (local stack and most tests) ---------------------------------------------------
def test_emulator_tokens_pass_through_verify_id_token(api: Api, world: World):
    assert api.legacy(create_body(), token=world.provider.token).status == 200


def test_bearer_header_is_accepted_too(api: Api, world: World):
    reply = api.call("POST", "/meetings", {"appointmentId": "appt_123"},
                     headers={"Authorization": f"Bearer {world.provider.token}"})  # fmt: skip
    assert reply.status == 201


def test_missing_token_is_401_token_missing(api: Api, world: World):
    reply = api.legacy(create_body())
    assert (reply.status, reply.code) == (401, "token_missing")


@pytest.mark.parametrize("token", ["abc", "a.b.c", "x" * 9000, "Bearer", "...", "W10.W10.", "bnVsbA.e30."])
def test_malformed_token_is_401_token_invalid(api: Api, world: World, token: str):
    # Not three base64url parts holding JSON objects ("W10" is [], "bnVsbA" is null): the app signs in again.
    reply = api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_invalid")


def test_expired_emulator_token_is_401_token_expired(api: Api, world: World):
    token = emulator_id_token(world.provider.firebase_uid, PROJECT, lifetime_seconds=-60)
    reply = api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_expired")


def test_emulator_token_with_wrong_audience_is_401(api: Api, world: World):
    token = emulator_id_token(world.provider.firebase_uid, "other-project")
    reply = api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_invalid")


def test_unregistered_emulator_user_is_401_user_not_registered(api: Api, world: World):
    reply = api.legacy(create_body(), token=emulator_id_token("stranger", PROJECT))
    assert (reply.status, reply.code) == (401, "user_not_registered")


def test_extract_token_header_precedence():
    assert extract_token({"X-Firebase-Token": " t1 ", "authorization": "Bearer t2"}) == "t1"
    assert extract_token({"authorization": "bearer t2"}) == "t2"
    with pytest.raises(TokenMissing):
        extract_token({"authorization": "Basic abc"})


def test_authenticator_errors_are_typed():
    auth = FirebaseAuthenticator(Settings.from_env({"STAGE": "test", "FIREBASE_PROJECT_ID": PROJECT,
                                                    "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}))  # fmt: skip
    with pytest.raises(TokenInvalid):
        auth.verify("not.a-jwt")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode().rstrip("=")
    with pytest.raises(TokenInvalid):
        auth.verify(f"{header}.{header}.")
    with pytest.raises(TokenExpired):
        auth.verify(emulator_id_token("u1", PROJECT, lifetime_seconds=-5))


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_emulator_mode_is_refused_in_deployed_stages(stage: str):
    with pytest.raises(SettingsError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        Settings.from_env({"STAGE": stage, "FIREBASE_PROJECT_ID": "p", "FIREBASE_AUTH_EMULATOR_HOST": "x:1"})
    with pytest.raises(SettingsError, match="emulator"):
        Settings.from_env({"STAGE": stage, "FIREBASE_PROJECT_ID": "p", "CHIME_BACKEND": "emulator"})
    with pytest.raises(SettingsError, match="outside the EU"):
        Settings.from_env({"STAGE": stage, "FIREBASE_PROJECT_ID": "p", "CHIME_MEDIA_REGION": "us-east-1"})
    assert Settings.from_env({"STAGE": stage, "FIREBASE_PROJECT_ID": "p"}).chime_backend == "aws"
