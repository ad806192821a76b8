"""Sending pushes: the `PushSender` interface, the FCM message each push becomes, and the real sender
(firebase-admin's messaging, with a service-account credential from Secrets Manager).

The message, per platform:
- Android: data-only, `priority: high` (wakes the app from Doze to ring), a TTL (a ring older than a
  minute is useless) and a collapse key per meeting, so a cancel replaces a ring FCM still holds for a
  device that is offline. The app shows its own notification (high-priority data messages that never
  show one get deprioritized by Android).
- iOS: a data-only message does not wake a killed app, so every push is a visible alert (generic text,
  never a name) through APNs: `apns-push-type: alert`, `apns-priority: 10`, `apns-expiration` (the TTL)
  and `apns-collapse-id` = the meeting. The cancel of a ring is a *replacing alert* with the same
  collapse id ("Missed video consultation" / "Video consultation answered"), not a background push: a
  background push (content-available, apns-priority 5) is throttled by iOS and never delivered to a
  force-quit app, while a replacing alert works in every app state. True call ringing would need
  PushKit/CallKit (VoIP pushes), which FCM does not send: out of scope.
- Both: `data` = {type, meetingId, appointmentId, callerRole[, reason]}; FCM also puts it into the APNs
  payload as custom keys.

firebase-admin is imported lazily (cold starts), and the real sender initialises its own firebase_admin
App ("push", apart from the verify-only app of core.auth) on the first send, from the service-account
JSON in Secrets Manager (PUSH_CREDENTIALS_SECRET_ARN). Without that setting in a deployed stage,
sending is disabled with one warning per execution environment. Local and test stages use
videocall.local.push instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from videocall.core.observability import count_failure, logger
from videocall.notifications.models import Outcome, Push

FCM_BATCH = 500  # messaging.send_each takes at most 500 messages
RETRY_CREDENTIALS_SECONDS = 300  # after a failed credential load (secret without a value yet, ...)
HTTP_TIMEOUT_SECONDS = 5  # per FCM request; lobby pushes are sent on the request path
# FCM error codes that mean the token will never work again: the device row goes.
DEAD_TOKEN_ERRORS = ("UnregisteredError", "SenderIdMismatchError")


class PushSender(Protocol):
    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        """Send each push; one outcome per push, in order. Never raises for a push FCM refused."""
        ...


def build_message(push: Push, *, now: float | None = None) -> Any:
    """The firebase_admin.messaging.Message for one push."""
    from firebase_admin import messaging

    if push.platform == "android":
        return messaging.Message(
            token=push.token,
            data=dict(push.data),
            android=messaging.AndroidConfig(priority="high", ttl=push.ttl_seconds, collapse_key=push.collapse_id),
        )
    expires = int((now if now is not None else time.time()) + push.ttl_seconds)
    alert = push.alert
    aps = messaging.Aps(
        alert=messaging.ApsAlert(title=alert.title, body=alert.body) if alert else None,
        sound="default" if alert and alert.sound else None,
        custom_data={"interruption-level": "time-sensitive"} if alert and alert.time_sensitive else None,
    )
    return messaging.Message(
        token=push.token,
        data=dict(push.data),
        apns=messaging.APNSConfig(
            headers={
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-expiration": str(expires),
                **({"apns-collapse-id": push.collapse_id} if push.collapse_id else {}),
            },
            payload=messaging.APNSPayload(aps=aps),
        ),
    )


def encode(message: Any) -> dict[str, Any]:
    """The JSON FCM receives for a message (`message` in the v1 send request), as firebase-admin encodes it."""
    from firebase_admin import messaging

    encoded: dict[str, Any] = messaging._MessagingService.encode_message(message)
    return encoded


def outcome_of(exception: BaseException | None) -> Outcome:
    if exception is None:
        return Outcome("sent")
    name = type(exception).__name__
    if name in DEAD_TOKEN_ERRORS:
        return Outcome("unregistered", name)
    return Outcome("failed", str(getattr(exception, "code", None) or name))


class DisabledSender:
    """No credential configured: nothing is sent (warned once)."""

    def __init__(self, reason: str) -> None:
        self._reason = reason
        self._warned = False

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not self._warned:
            self._warned = True
            logger.warning("push notifications are disabled", extra={"reason": self._reason})
        return [Outcome("disabled") for _ in pushes]


class FcmSender:
    """firebase-admin's messaging.send_each with an App of its own, initialised on the first send from the
    service-account JSON kept in Secrets Manager (read once per execution environment)."""

    def __init__(
        self, secret_arn: str, *, app_name: str = "push", secrets_client: Callable[[str], Any] | None = None,
        http_timeout: float = HTTP_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._secret_arn = secret_arn
        self._app_name = app_name
        self._secrets_client = secrets_client or _secrets_client
        self._http_timeout = http_timeout
        self._clock = clock
        self._app: Any = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not pushes:
            return []
        app = self._firebase_app()
        if app is None:
            return [Outcome("failed", "credentials_unavailable") for _ in pushes]
        from firebase_admin import exceptions, messaging

        outcomes: list[Outcome] = []
        messages = [build_message(p) for p in pushes]
        for start in range(0, len(messages), FCM_BATCH):
            batch = messages[start : start + FCM_BATCH]
            try:
                response = messaging.send_each(batch, app=app)
            except (exceptions.FirebaseError, ValueError) as exc:  # the batch as a whole (never the token in it)
                outcomes += [Outcome("failed", type(exc).__name__)] * len(batch)
                continue
            outcomes += [outcome_of(r.exception) for r in response.responses]
        return outcomes

    def _firebase_app(self) -> Any:
        if self._app is not None:
            return self._app
        with self._lock:
            if self._app is None and self._clock() >= self._retry_at:
                try:
                    self._app = self._initialise()
                except Exception as exc:  # a missing/empty/malformed secret: retried later, never a failed event
                    self._retry_at = self._clock() + RETRY_CREDENTIALS_SECONDS
                    logger.warning("push credentials unavailable", extra={"error_type": type(exc).__name__,
                                                                           "error_code": _aws_code(exc)})  # fmt: skip
                    count_failure("push_credentials")
        return self._app

    def _initialise(self) -> Any:
        import firebase_admin
        from firebase_admin import credentials

        try:
            return firebase_admin.get_app(self._app_name)
        except ValueError:
            pass
        region = self._secret_arn.split(":")[3]
        secret = self._secrets_client(region).get_secret_value(SecretId=self._secret_arn)
        info = json.loads(secret["SecretString"])
        certificate = credentials.Certificate(info)  # checks type == service_account and the key
        return firebase_admin.initialize_app(
            certificate, {"projectId": info["project_id"], "httpTimeout": self._http_timeout}, name=self._app_name
        )


def _aws_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)  # botocore's ClientError
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _secrets_client(region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(region_name=region, retries={"mode": "standard", "total_max_attempts": 2},
                    connect_timeout=2, read_timeout=5)  # fmt: skip
    return boto3.client("secretsmanager", config=config)
