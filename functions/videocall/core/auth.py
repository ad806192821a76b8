"""Authentication: a Firebase ID token in, a verified Firebase uid out.

The uid is mapped to a registered user by the first database query of each action (joined with
the appointment or meeting it is about), so authentication costs no round trip of its own.

Verification is firebase-admin's (`TokenVerifier`, which hands the signature, `exp`/`iat` and
audience checks to google-auth's `id_token.verify_token`); nothing here checks a JWT by hand. What
this module adds:

- a shape check first, so a token that is not three base64url parts of at most 8 KB is refused
  without being parsed at length;
- `CertificateCache`, the transport firebase-admin fetches Google's public certificates through: it
  keeps the certificate response in memory until its Cache-Control max-age runs out, so a warm
  verification makes no HTTP call and no cache read (firebase-admin's own cachecontrol session
  re-read and re-validated its cache on every call). A token whose `kid` none of the cached
  certificates has (Google rotated its keys) makes the next verification fetch once more, at most
  once a minute, so forged `kid`s cannot make us hammer Google; still unknown after that: refused;
- one 401 code per thing the app can act on: `token_expired` (refresh and retry), `token_invalid`
  (anything else wrong with the token: sign in again); `user_not_registered` comes from the
  database lookup, and `token_missing` from `extract_token`.

Credentials: verifying an ID token needs only the project id and Google's public certificates,
never a service account. firebase-admin would otherwise look for Application Default Credentials,
which a Lambda function does not have, so the app is initialised with an anonymous credential
(`VerifyOnlyCredential`). Revocation checks (check_revoked=True) would need a service account and
a call to Google per request; they are off, and an ID token lives at most one hour.

Cold starts: firebase-admin and google-auth (with requests, httpx and cryptography behind them) are
imported on the first verification (or `prepare()`), never at import: functions that verify no
token (Chime events, scheduled jobs) never load them.

Emulator mode (FIREBASE_AUTH_EMULATOR_HOST) makes firebase-admin accept unsigned tokens; Settings
refuses it in any deployed stage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from videocall.core.errors import ServiceUnavailable, TokenExpired, TokenInvalid, TokenMissing
from videocall.core.observability import traced
from videocall.core.settings import Settings

TOKEN_HEADER = "x-firebase-token"  # noqa: S105 - a header name, not a secret
APP_NAME = "videocall"
# A Firebase ID token is about 1 KB; custom claims can grow it, never to 8 KB. (API Gateway REST APIs
# refuse a request whose request line and headers pass 10 KB before it reaches us at all.)
MAX_TOKEN_CHARS = 8192
# Tolerated clock difference between Google (iat, exp) and this function, in seconds: with none, a
# token used within a second of being issued could be refused as "issued in the future".
CLOCK_SKEW_SECONDS = 5
CERTIFICATE_TIMEOUT_SECONDS = 5.0
MAX_CERTIFICATE_AGE_SECONDS = 24 * 3600  # whatever max-age says
MIN_REFETCH_SECONDS = 60.0  # an unknown kid refetches at most this often


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


def _unverified_header(token: str) -> dict[str, Any]:
    """A JWT is three base64url parts with a JSON object as header and payload; anything else (or
    anything longer than any ID token) is refused before it is parsed. Returns the header."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise TokenInvalid()
    parts = token.split(".")
    try:
        decoded = [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2]]
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenInvalid() from None
    if not all(isinstance(part, dict) for part in decoded):
        raise TokenInvalid()
    return decoded[0]


# --- Google's certificates, kept in memory ------------------------------------------------------------
@dataclass(frozen=True)
class CachedResponse:
    """A google.auth.transport.Response served from memory."""

    status: int
    headers: Mapping[str, str]
    data: bytes


@dataclass
class _Entry:
    response: CachedResponse
    fetched_at: float  # or last tried: unknown kids refetch at most once per MIN_REFETCH_SECONDS
    expires_at: float
    kids: frozenset[str] = field(default_factory=frozenset)
    recheck: bool = False  # a token came with a kid this set lacks: fetch again, keep this if that fails

    def fresh(self, now: float) -> bool:
        return now < self.expires_at and not self.recheck


def max_age(headers: Mapping[str, str]) -> float:
    """Seconds a response may be reused: Cache-Control max-age less Age; 0 if it must not be."""
    lowered = {k.lower(): v for k, v in headers.items()}
    seconds = 0.0
    for directive in (lowered.get("cache-control") or "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                seconds = float(value.strip().strip('"'))
            except ValueError:
                return 0.0
    with contextlib.suppress(ValueError):
        seconds -= float(lowered.get("age") or 0)
    return max(0.0, min(seconds, MAX_CERTIFICATE_AGE_SECONDS))


def _key_ids(data: bytes) -> frozenset[str]:
    try:
        certs = json.loads(data)
    except ValueError:
        return frozenset()
    if isinstance(certs, dict) and isinstance(certs.get("keys"), list):  # a JWK set
        return frozenset(str(k.get("kid")) for k in certs["keys"] if isinstance(k, dict))
    return frozenset(certs) if isinstance(certs, dict) else frozenset()


class CertificateCache:
    """The google.auth transport (`Request`) firebase-admin fetches Google's public certificates with.

    A GET answered 200 is kept in memory (bytes and the key ids in it) until its max-age runs out;
    until then it is served without any HTTP call. Anything else passes through uncached. Errors are
    google-auth's TransportError, which firebase-admin reports as CertificateFetchError.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = CERTIFICATE_TIMEOUT_SECONDS,
        min_refetch_seconds: float = MIN_REFETCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        transport: Callable[..., Any] | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._min_refetch = min_refetch_seconds
        self._clock = clock
        self._transport = transport
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0  # HTTP calls made, for tests and benchmarks

    def __call__(
        self, url: str, method: str = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kwargs: Any
    ) -> Any:
        if method != "GET" or body is not None:
            return self._http()(url, method=method, body=body, headers=headers, timeout=timeout or self._timeout,
                                **kwargs)  # fmt: skip
        entry = self._entries.get(url)
        if entry is not None and entry.fresh(self._clock()):
            return entry.response
        with self._lock:  # one fetch at a time; a thread that waited finds it done
            entry = self._entries.get(url)
            if entry is not None and entry.fresh(self._clock()):
                return entry.response
            if entry is None or not entry.recheck:
                return self._fetch(url, headers, timeout or self._timeout, **kwargs)
            # Rotation check: if Google cannot be reached, the certificates we have are still good.
            from google.auth.exceptions import TransportError

            entry.recheck, entry.fetched_at = False, self._clock()
            try:
                response = self._fetch(url, headers, timeout or self._timeout, **kwargs)
            except TransportError:
                return entry.response
            return response if response.status == 200 else entry.response

    def expect(self, kid: Any) -> None:
        """Before verifying a token signed with key `kid`: if a cached certificate set lacks it (Google
        rotated its keys) and was fetched long enough ago, the verification fetches it anew."""
        if not isinstance(kid, str) or not kid:
            return
        for entry in list(self._entries.values()):
            if kid not in entry.kids and self._clock() - entry.fetched_at >= self._min_refetch:
                entry.recheck = True

    def _fetch(self, url: str, headers: Any, timeout: Any, **kwargs: Any) -> Any:
        with traced("## firebase certificates"):
            self.fetches += 1
            response = self._http()(url, method="GET", headers=headers, timeout=timeout, **kwargs)
        if response.status == 200:
            now = self._clock()
            data = bytes(response.data)
            cached = CachedResponse(200, dict(response.headers), data)
            self._entries[url] = _Entry(cached, now, now + max_age(response.headers), _key_ids(data))
            return cached
        return response

    def _http(self) -> Callable[..., Any]:
        if self._transport is None:
            import requests
            from google.auth.transport.requests import Request

            self._transport = Request(requests.Session())
        return self._transport


# --- the verifier --------------------------------------------------------------------------------------
def _verify_only_credential() -> Any:
    from firebase_admin import credentials
    from google.auth.credentials import AnonymousCredentials

    class VerifyOnlyCredential(credentials.Base):
        """A credential that signs nothing: enough for verify_id_token, which only fetches public certs."""

        def get_credential(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    return VerifyOnlyCredential()


@dataclass(frozen=True)
class _Verifier:
    verify_id_token: Callable[..., dict[str, Any]]
    expired: type[Exception]
    invalid: tuple[type[Exception], ...]
    fetch_failed: type[Exception]


class FirebaseAuthenticator:
    def __init__(self, settings: Settings, *, certificates: CertificateCache | None = None) -> None:
        self._settings = settings
        self.certificates = certificates or CertificateCache()
        self._verifier: _Verifier | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Build the Firebase app and its token verifier now (no network call)."""
        self._get_verifier()

    def _get_verifier(self) -> _Verifier:
        # Built on first use, not at import: cold starts that never verify a token pay nothing.
        if self._verifier is None:
            with self._lock:
                if self._verifier is None:
                    self._verifier = self._build_verifier()
        return self._verifier

    def _build_verifier(self) -> _Verifier:
        import firebase_admin
        from firebase_admin import _token_gen
        from firebase_admin import auth as firebase_auth

        name = f"{APP_NAME}-{self._settings.firebase_project_id}"
        try:
            app = firebase_admin.get_app(name)
        except ValueError:
            app = firebase_admin.initialize_app(
                _verify_only_credential(), options={"projectId": self._settings.firebase_project_id}, name=name
            )
        # firebase-admin's own verifier, fetching certificates through our in-memory cache instead of
        # its cachecontrol session (no public option for this; tests fail if the attribute moves).
        verifier = _token_gen.TokenVerifier(app)
        if not isinstance(getattr(verifier, "request", None), _token_gen.CertificateFetchRequest):
            raise RuntimeError("firebase-admin's TokenVerifier no longer has a `request` transport to replace")
        verifier.request = self.certificates
        return _Verifier(
            verify_id_token=verifier.verify_id_token,
            expired=firebase_auth.ExpiredIdTokenError,
            invalid=(firebase_auth.InvalidIdTokenError, ValueError),
            fetch_failed=firebase_auth.CertificateFetchError,
        )

    def verify(self, token: str) -> str:
        """Return the token's Firebase uid, or raise the 401 that says what is wrong with it."""
        header = _unverified_header(token)
        verifier = self._get_verifier()
        emulated = bool(self._settings.firebase_auth_emulator_host)
        if not emulated:
            self.certificates.expect(header.get("kid"))
        try:
            claims = verifier.verify_id_token(token, clock_skew_seconds=CLOCK_SKEW_SECONDS)
        except verifier.expired:
            raise TokenExpired() from None
        except verifier.fetch_failed:
            raise ServiceUnavailable("Token certificates could not be fetched; retry later.") from None
        except verifier.invalid:
            # Bad signature, wrong issuer/audience, unknown kid, future iat, empty sub, ...: all "not ours".
            raise TokenInvalid() from None
        if emulated and float(claims.get("exp", 0)) < time.time():
            # firebase-admin skips the expiry check in emulator mode; keep local behaviour honest.
            raise TokenExpired()
        uid = claims.get("uid") or claims.get("sub")
        if not isinstance(uid, str) or not uid:
            raise TokenInvalid()
        return uid
