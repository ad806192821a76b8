"""Authentication: a Firebase ID token in, a verified Firebase uid out.

The uid is mapped to a registered user by the first database query of each action (joined with
the appointment or meeting it is about), so authentication costs no round trip of its own.

Credentials: verifying an ID token needs only the project id and Google's public certificates,
never a service account. firebase-admin would otherwise look for Application Default Credentials,
which a Lambda function does not have, so the app is initialised with an anonymous credential
(`VerifyOnlyCredential`). Revocation checks (check_revoked=True) would need a service account and
a call to Google per request; they are off, and an ID token lives at most one hour.

Emulator mode (FIREBASE_AUTH_EMULATOR_HOST) makes firebase-admin accept unsigned tokens; Settings
refuses it in any deployed stage.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import firebase_admin
from firebase_admin import auth as firebase_auth
from firebase_admin import credentials
from google.auth.credentials import AnonymousCredentials

from videocall.core.errors import (
    ServiceUnavailable,
    TokenExpired,
    TokenInvalid,
    TokenMalformed,
    TokenMissing,
    TokenRevoked,
)
from videocall.core.settings import Settings

TOKEN_HEADER = "x-firebase-token"  # noqa: S105 - a header name, not a secret
APP_NAME = "videocall"


class VerifyOnlyCredential(credentials.Base):
    """A credential that signs nothing: enough for verify_id_token, which only fetches public certs."""

    def get_credential(self) -> AnonymousCredentials:
        return AnonymousCredentials()


def extract_token(headers: Mapping[str, str]) -> str:
    """The ID token from x-firebase-token (the app's header) or Authorization: Bearer."""
    lowered = {k.lower(): v for k, v in headers.items()}
    token = (lowered.get(TOKEN_HEADER) or "").strip()
    if not token:
        authorization = (lowered.get("authorization") or "").strip()
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    if not token:
        raise TokenMissing()
    return token


def _check_shape(token: str) -> None:
    """A JWT is three base64url parts with a JSON header and payload; anything else is malformed."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 8192:
        raise TokenMalformed()
    try:
        for part in parts[:2]:
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenMalformed() from None


class FirebaseAuthenticator:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: firebase_admin.App | None = None
        self._lock = threading.Lock()

    def _firebase_app(self) -> firebase_admin.App:
        # Created on first use, not at import: cold starts that fail before auth pay nothing.
        if self._app is None:
            with self._lock:
                if self._app is None:
                    try:
                        self._app = firebase_admin.get_app(APP_NAME)
                    except ValueError:
                        self._app = firebase_admin.initialize_app(
                            VerifyOnlyCredential(),
                            options={"projectId": self._settings.firebase_project_id},
                            name=APP_NAME,
                        )
        return self._app

    def verify(self, token: str) -> str:
        """Return the token's Firebase uid, or raise the 401 that says what is wrong with it."""
        _check_shape(token)
        try:
            claims: dict[str, Any] = firebase_auth.verify_id_token(token, app=self._firebase_app())
        except firebase_auth.ExpiredIdTokenError:
            raise TokenExpired() from None
        except firebase_auth.RevokedIdTokenError:
            raise TokenRevoked() from None
        except firebase_auth.CertificateFetchError:
            raise ServiceUnavailable("Token certificates could not be fetched; retry later.") from None
        except (firebase_auth.InvalidIdTokenError, ValueError):
            # Bad signature, wrong issuer/audience, unknown kid, future iat, ...: all "not ours".
            raise TokenInvalid() from None
        if self._settings.firebase_auth_emulator_host and float(claims.get("exp", 0)) < time.time():
            # firebase-admin skips the expiry check in emulator mode; keep local behaviour honest.
            raise TokenExpired()
        uid = claims.get("uid") or claims.get("sub")
        if not isinstance(uid, str) or not uid:
            raise TokenInvalid()
        return uid
