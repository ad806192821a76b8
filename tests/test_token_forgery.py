"""Every kind of forged, stale or broken ID token, with real RS256 keys, in a deployed-like stage (the
emulator's unsigned-token path off): a 401 whose code the app acts on (token_expired: refresh;
user_not_registered; token_invalid: anything else), the token echoed nowhere (response or logs), and
the order of checks (token, then size, then JSON). Then the certificate cache: a warm verification
makes no HTTP call; max-age, key rotation and a dead certificate endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import requests
import responses
from conftest import PROJECT, Api, Runtime, World, add_user, create_body
from firebase_admin._token_gen import ID_TOKEN_CERT_URI
from google.auth import crypt
from google.auth import jwt as google_jwt
from test_authentication import _key_and_cert
from videocall.core import auth as auth_module
from videocall.core.auth import CertificateCache, FirebaseAuthenticator, max_age
from videocall.core.errors import ServiceUnavailable, TokenInvalid
from videocall.core.observability import logger
from videocall.core.settings import Settings
from videocall.local.devtools import emulator_id_token

KID, NEW_KID = "google-key-1", "google-key-2"
MEETING = "00000000-0000-4000-8000-000000000000"  # any well-formed meeting id


@dataclass(frozen=True)
class Keys:
    google: tuple[str, str]  # (private key PEM, certificate PEM) of the key Google signs with
    rotated: tuple[str, str]  # the next key Google rotates to
    forger: tuple[str, str]  # a key nobody trusts

    def certs(self, *kids: str) -> dict[str, str]:
        by_kid = {KID: self.google[1], NEW_KID: self.rotated[1]}
        return {kid: by_kid[kid] for kid in kids or (KID,)}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(_key_and_cert(), _key_and_cert(), _key_and_cert())


def claims(uid: str, **override: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "auth_time": now - 10,
        "sub": uid, "user_id": uid, "iat": now - 10, "exp": now + 3600,
        "firebase": {"sign_in_provider": "password"},
    }  # fmt: skip
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


def rs256(pem_key: str, payload: dict[str, Any], kid: str = KID) -> str:
    return google_jwt.encode(crypt.RSASigner.from_string(pem_key, key_id=kid), payload).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _part(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def hs256_with_certificate(cert_pem: str, payload: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the (public) certificate Google publishes."""
    signing_input = f"{_part({'alg': 'HS256', 'kid': KID, 'typ': 'JWT'})}.{_part(payload)}"
    signature = hmac.new(cert_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def alg_none(payload: dict[str, Any]) -> str:
    return f"{_part({'alg': 'none', 'kid': KID, 'typ': 'JWT'})}.{_part(payload)}."


def tampered(token: str, **override: Any) -> str:
    """A genuine token whose payload is changed, its original signature kept."""
    header, payload, signature = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims_.update(override)
    return f"{header}.{_part(claims_)}.{signature}"


def oversized(pem_key: str, uid: str) -> str:
    """A genuinely signed token padded to 64 KB with a claim."""
    return rs256(pem_key, claims(uid, padding="x" * 65536))


# class -> (token for the provider, expected code)
Forge = Callable[[Keys, World], str]
FORGERIES: dict[str, tuple[Forge, str]] = {
    "malformed": (lambda k, w: "not-a-jwt", "token_invalid"),
    "malformed_json_parts": (lambda k, w: f"{_b64(b'[1]')}.{_b64(b'{')}.{_b64(b'sig')}", "token_invalid"),
    "alg_none": (lambda k, w: alg_none(claims(w.provider.firebase_uid)), "token_invalid"),
    "hs256_signed_with_the_public_certificate": (
        lambda k, w: hs256_with_certificate(k.google[1], claims(w.provider.firebase_uid)), "token_invalid"),
    "signed_by_another_key": (lambda k, w: rs256(k.forger[0], claims(w.provider.firebase_uid)), "token_invalid"),
    "expired": (lambda k, w: rs256(k.google[0], claims(w.provider.firebase_uid, iat=int(time.time()) - 7200,
                                                       exp=int(time.time()) - 3600)), "token_expired"),
    "not_yet_valid": (lambda k, w: rs256(k.google[0], claims(w.provider.firebase_uid, iat=int(time.time()) + 3600,
                                                             exp=int(time.time()) + 7200)), "token_invalid"),
    "wrong_audience": (lambda k, w: rs256(k.google[0], claims(w.provider.firebase_uid, aud="someone-else")),
                       "token_invalid"),
    "wrong_issuer": (lambda k, w: rs256(k.google[0], claims(
        w.provider.firebase_uid, iss="https://securetoken.google.com/someone-else")), "token_invalid"),
    "unknown_kid": (lambda k, w: rs256(k.forger[0], claims(w.provider.firebase_uid), kid="no-such-key"),
                    "token_invalid"),
    "unknown_kid_signed_by_google": (lambda k, w: rs256(k.google[0], claims(w.provider.firebase_uid), kid="nope"),
                                     "token_invalid"),
    "missing_kid": (lambda k, w: google_jwt.encode(crypt.RSASigner.from_string(k.google[0]),
                                                   claims(w.provider.firebase_uid)).decode(), "token_invalid"),
    "tampered_payload": (lambda k, w: tampered(rs256(k.google[0], claims(w.patient.firebase_uid)),
                                               sub=w.provider.firebase_uid, user_id=w.provider.firebase_uid),
                         "token_invalid"),
    "tampered_expiry": (lambda k, w: tampered(rs256(k.google[0], claims(w.provider.firebase_uid, exp=int(time.time()) - 1)),
                                              exp=int(time.time()) + 3600), "token_invalid"),
    "empty_sub": (lambda k, w: rs256(k.google[0], claims("", user_id="")), "token_invalid"),
    "missing_sub": (lambda k, w: rs256(k.google[0], claims(w.provider.firebase_uid, sub=None)), "token_invalid"),
    "oversized_64kb": (lambda k, w: oversized(k.google[0], w.provider.firebase_uid), "token_invalid"),
    "emulator_style_unsigned": (lambda k, w: emulator_id_token(w.provider.firebase_uid, PROJECT), "token_invalid"),
    "unregistered_user": (lambda k, w: rs256(k.google[0], claims("nobody-we-know")), "user_not_registered"),
}  # fmt: skip


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch, keys: Keys) -> Iterator[responses.RequestsMock]:
    """Production verification (no emulator host anywhere), Google's certificate endpoint served locally."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(ID_TOKEN_CERT_URI, json=keys.certs(), headers={"Cache-Control": "public, max-age=3600"})
        yield mock


def deployed_authenticator(**cache: Any) -> FirebaseAuthenticator:
    settings = Settings.from_env({"STAGE": "prod", "FIREBASE_PROJECT_ID": PROJECT})
    assert settings.firebase_auth_emulator_host is None
    return FirebaseAuthenticator(settings, certificates=CertificateCache(**cache))


@pytest.fixture
def prod_api(runtime: Runtime, google: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setattr(runtime, "authenticator", deployed_authenticator())
    return Api()


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything logged (Powertools' JSON records, wherever its handler points) and printed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)

    def read() -> str:
        out, err = capfd.readouterr()
        return stream.getvalue() + out + err

    yield read
    logger._logger.removeHandler(handler)


def assert_not_echoed(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text
        for part in token.split("."):
            if len(part) >= 16:
                assert part[:16] not in text and part[-16:] not in text


# --- each class of forgery ------------------------------------------------------------------------------
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_token_is_401_with_its_code_and_never_echoed(
    prod_api: Api, world: World, keys: Keys, logs: Callable[[], str], forgery: str
):
    make, code = FORGERIES[forgery]
    token = make(keys, world)
    for reply in (prod_api.legacy(create_body(), token=token), prod_api.get(f"/meetings/{MEETING}", token=token)):
        assert (reply.status, reply.code) == (401, code), reply.body
        assert_not_echoed(token, json.dumps(reply.body), json.dumps(reply.headers))
    assert_not_echoed(token, logs())


def test_the_genuine_token_passes(prod_api: Api, world: World, keys: Keys):
    """The control for every case above: the same claims, properly signed, are accepted."""
    reply = prod_api.legacy(create_body(), token=rs256(keys.google[0], claims(world.provider.firebase_uid)))
    assert reply.status == 200, reply.body


def test_no_token_is_401_token_missing(prod_api: Api, world: World):
    for headers in (
        {},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer "},
        {"x-firebase-token": " "},
    ):
        reply = prod_api.call("POST", "/chime-meeting-token", create_body(), headers=headers)
        assert (reply.status, reply.code) == (401, "token_missing")


def test_token_of_a_deleted_user_is_401_user_not_registered(prod_api: Api, world: World, keys: Keys, clean_db: str):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        gone = add_user(conn, "fb-deleted", "provider", "Dr Gone Away")
        token = rs256(keys.google[0], claims(gone.firebase_uid))
        conn.execute("DELETE FROM users WHERE id = %s", (gone.id,))
    reply = prod_api.get("/appointments/appt_123/consent", token=token)
    assert (reply.status, reply.code) == (401, "user_not_registered")


def test_a_64_kb_token_is_refused_without_being_parsed(
    runtime: Runtime, prod_api: Api, world: World, keys: Keys, monkeypatch: pytest.MonkeyPatch
):
    """Refused on its length alone (API Gateway REST APIs refuse request lines + headers over 10 KB even
    before that): never base64-decoded, no certificate fetched."""
    decoded: list[int] = []
    real_decode = auth_module.base64.urlsafe_b64decode
    monkeypatch.setattr(auth_module.base64, "urlsafe_b64decode", lambda s: decoded.append(len(s)) or real_decode(s))
    token = oversized(keys.google[0], world.provider.firebase_uid)
    assert len(token) > 64 * 1024
    reply = prod_api.legacy(create_body(), token=token)
    assert (reply.status, reply.code) == (401, "token_invalid")
    assert decoded == [] and runtime.authenticator.certificates.fetches == 0


# --- the order of checks: token, then size, then the body -----------------------------------------------
def test_order_of_checks(prod_api: Api, world: World, keys: Keys, runtime: Runtime):
    good = rs256(keys.google[0], claims(world.provider.firebase_uid))
    forged = rs256(keys.forger[0], claims(world.provider.firebase_uid))
    huge = json.dumps({**create_body(), "pad": "x" * (runtime.settings.max_body_bytes + 1)})
    broken = '{"action": "create", "appointmentId": '
    cases = [
        (None, huge, 401, "token_missing"),
        (forged, huge, 401, "token_invalid"),
        (alg_none(claims(world.provider.firebase_uid)), huge, 401, "token_invalid"),
        (forged, broken, 401, "token_invalid"),
        (forged, '{"action": "create", "x": "\\u0000"}', 401, "token_invalid"),
        (good, huge, 413, "body_too_large"),
        (good, broken, 400, "malformed_json"),
    ]
    for token, raw, status, code in cases:
        reply = prod_api.call("POST", "/chime-meeting-token", raw=raw, token=token)
        assert (reply.status, reply.code) == (status, code), (status, code)


# --- the certificate cache ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fetches(mock: responses.RequestsMock) -> int:
    return sum(1 for call in mock.calls if call.request.url == ID_TOKEN_CERT_URI)


def test_warm_verification_makes_no_http_call(google: responses.RequestsMock, keys: Keys, world: World):
    auth = deployed_authenticator()
    token = rs256(keys.google[0], claims(world.provider.firebase_uid))
    assert auth.verify(token) == world.provider.firebase_uid
    assert _fetches(google) == 1
    with responses.RequestsMock() as offline:  # no URL registered: any HTTP call raises ConnectionError
        for _ in range(3):
            assert auth.verify(token) == world.provider.firebase_uid
            assert auth.verify(rs256(keys.google[0], claims(world.patient.firebase_uid))) == world.patient.firebase_uid
        assert len(offline.calls) == 0
    assert auth.certificates.fetches == 1


def test_certificates_are_fetched_again_after_their_max_age(google: responses.RequestsMock, keys: Keys, world: World):
    clock = Clock()
    auth = deployed_authenticator(clock=clock)
    google.replace(responses.GET, ID_TOKEN_CERT_URI, json=keys.certs(),
                   headers={"Cache-Control": "public, max-age=600, must-revalidate", "Age": "100"})  # fmt: skip
    token = rs256(keys.google[0], claims(world.provider.firebase_uid))
    auth.verify(token)
    clock.now += 499
    auth.verify(token)
    assert _fetches(google) == 1
    clock.now += 2  # 600 s max-age less the 100 s the response had already aged
    auth.verify(token)
    assert _fetches(google) == 2


def test_key_rotation_refetches_once_then_unknown_kid_is_invalid(
    google: responses.RequestsMock, keys: Keys, world: World
):
    clock = Clock()
    auth = deployed_authenticator(clock=clock)
    uid = world.provider.firebase_uid
    auth.verify(rs256(keys.google[0], claims(uid)))
    # Google publishes its next key; a token signed with it arrives within the cached certificates' max-age.
    google.replace(responses.GET, ID_TOKEN_CERT_URI, json=keys.certs(KID, NEW_KID),
                   headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip
    clock.now += 120
    assert auth.verify(rs256(keys.rotated[0], claims(uid), kid=NEW_KID)) == uid
    assert _fetches(google) == 2
    assert auth.verify(rs256(keys.google[0], claims(uid))) == uid  # the old key still verifies, from memory
    # A kid still unknown right after a refetch is refused, and refused kids do not refetch again and again.
    for i in range(5):
        with pytest.raises(TokenInvalid):
            auth.verify(rs256(keys.forger[0], claims(uid), kid=f"forged-{i}"))
    assert _fetches(google) == 2
    clock.now += 61  # at most one refetch a minute for unknown kids
    with pytest.raises(TokenInvalid):
        auth.verify(rs256(keys.forger[0], claims(uid), kid="forged-again"))
    assert _fetches(google) == 3


def test_rotation_check_while_google_is_unreachable_keeps_the_cached_certificates(
    google: responses.RequestsMock, keys: Keys, world: World
):
    clock = Clock()
    auth = deployed_authenticator(clock=clock)
    uid = world.provider.firebase_uid
    auth.verify(rs256(keys.google[0], claims(uid)))
    google.replace(responses.GET, ID_TOKEN_CERT_URI, body=requests.ConnectionError("down"))
    clock.now += 120
    with pytest.raises(TokenInvalid):  # the refetch failed: the kid is unknown, not a 503
        auth.verify(rs256(keys.forger[0], claims(uid), kid="forged"))
    assert auth.verify(rs256(keys.google[0], claims(uid))) == uid  # the cached set still serves
    assert _fetches(google) == 2


def test_certificate_endpoint_down_is_503_retry_later(
    runtime: Runtime, google: responses.RequestsMock, keys: Keys, world: World, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(runtime, "authenticator", deployed_authenticator())
    token = rs256(keys.google[0], claims(world.provider.firebase_uid))
    for failure in ({"status": 500, "body": "oops"}, {"body": requests.ConnectionError("down")}):
        google.replace(responses.GET, ID_TOKEN_CERT_URI, **failure)  # type: ignore[arg-type]
        with pytest.raises(ServiceUnavailable):
            runtime.authenticator.verify(token)
        reply = Api().legacy(create_body(), token=token)
        assert (reply.status, reply.code, reply.headers.get("Retry-After")) == (503, "service_unavailable", "1")
    # Nothing failed is cached: the endpoint back, the next request passes.
    google.replace(responses.GET, ID_TOKEN_CERT_URI, json=keys.certs(), headers={"Cache-Control": "max-age=60"})
    assert Api().legacy(create_body(), token=token).status == 200


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Cache-Control": "public, max-age=19822, must-revalidate, no-transform"}, 19822),
        ({"cache-control": "max-age=600", "Age": "700"}, 0),
        ({"Cache-Control": "no-store, max-age=600"}, 0),
        ({"Cache-Control": "max-age=abc"}, 0),
        ({}, 0),
        ({"Cache-Control": "max-age=99999999"}, 24 * 3600),
    ],
)
def test_max_age(headers: dict[str, str], seconds: float):
    assert max_age(headers) == seconds


def test_uncacheable_certificates_are_fetched_every_time(google: responses.RequestsMock, keys: Keys, world: World):
    auth = deployed_authenticator()
    google.replace(responses.GET, ID_TOKEN_CERT_URI, json=keys.certs(), headers={"Cache-Control": "no-cache"})
    token = rs256(keys.google[0], claims(world.provider.firebase_uid))
    auth.verify(token)
    auth.verify(token)
    assert _fetches(google) == 2
