"""The notifications context's API bodies and the push messages it sends.

A push carries only what the app needs to act: the kind of message, the meeting, the appointment and
the caller's role. Never a name, never health data: a notification can be read on a locked screen and
passes through Google's and Apple's services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, Field

from videocall.core.schema import StrictBody

Platform = Literal["android", "ios"]
Kind = Literal["incoming_call", "call_cancelled", "patient_waiting", "admitted"]

# A client-generated id per app installation: a UUID or a Firebase installation id (22 chars).
INSTALLATION_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
InstallationIdParam = Annotated[
    str, Path(pattern=INSTALLATION_ID_PATTERN, description="The app installation's own id (16-64 of A-Z a-z 0-9 _ -)")
]
# FCM registration tokens are printable ASCII (about 160 characters today); the bound keeps rows small.
MAX_TOKEN_LENGTH = 4096


class DeviceBody(StrictBody):
    fcmToken: Annotated[
        str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH, pattern=r"^[!-~]+$", description="The FCM token")
    ]
    platform: Platform


class DeviceResponse(BaseModel):
    installationId: str
    registered: bool
    platform: Platform | None = None
    updatedAt: str | None = None


@dataclass(frozen=True)
class Alert:
    """The visible alert iOS shows (generic text only)."""

    title: str
    body: str | None = None
    sound: bool = False
    time_sensitive: bool = False


@dataclass(frozen=True)
class Push:
    """One message to one device. `user_id` and `installation_id` say whose device it is (for the local
    outbox and for deleting a dead token); they are never sent."""

    token: str = field(repr=False)
    platform: Platform
    kind: Kind
    data: dict[str, str]
    collapse_id: str | None  # Android collapse_key and apns-collapse-id: a cancel replaces its ring
    ttl_seconds: int
    alert: Alert | None  # iOS only: Android gets data-only messages
    user_id: str
    installation_id: str


@dataclass(frozen=True)
class Outcome:
    """What became of one push: sent, unregistered (the token is dead: delete the device), failed, or
    disabled (no credential configured). `code` is FCM's error code or an exception's type, never text."""

    status: Literal["sent", "unregistered", "failed", "disabled"]
    code: str | None = None
