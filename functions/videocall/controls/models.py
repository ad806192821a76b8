"""The controls API's bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from videocall.core.schema import StrictBody

Switch = Literal["on", "off"]
Presence = Literal["waiting", "denied", "removed", "joined", "left", "not_joined"]


class CapabilitiesBody(StrictBody):
    """At least one of the three; a key left out keeps its value (null is not a value here)."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"minProperties": 1})

    audio: Switch | SkipJsonSchema[None] = None
    video: Switch | SkipJsonSchema[None] = None
    content: Switch | SkipJsonSchema[None] = Field(None, description="screen share")

    @model_validator(mode="after")
    def _something(self) -> CapabilitiesBody:
        if self.audio is None and self.video is None and self.content is None:
            raise ValueError("give at least one of audio, video, content")
        return self

    def change(self) -> dict[str, str]:
        return {k: v for k, v in (("audio", self.audio), ("video", self.video), ("content", self.content)) if v}


class LobbyDecisionBody(StrictBody):
    decision: Literal["admit", "deny"]


class Allowed(BaseModel):
    audio: Switch
    video: Switch
    content: Switch


class ParticipantView(BaseModel):
    userId: str
    role: str = Field(description="provider, patient or admin (the user's role; no names)")
    isAppointmentProvider: bool
    isAppointmentPatient: bool
    presence: Presence
    networkType: str | None = None
    allowed: Allowed
    handRaised: bool
    handRaisedAt: str | None = None


class ParticipantsResponse(BaseModel):
    meetingId: str
    participants: list[ParticipantView]


class ParticipantChangeResponse(BaseModel):
    meetingId: str
    userId: str
    presence: Presence | None = None
    allowed: Allowed | None = None


class MuteAllResponse(BaseModel):
    meetingId: str
    muted: int = Field(description="participants muted now; late joiners arrive muted too")


class LobbyEntry(BaseModel):
    userId: str
    role: str
    waitingSince: str | None


class LobbyResponse(BaseModel):
    meetingId: str
    waiting: list[LobbyEntry]


class LobbyDecisionResponse(BaseModel):
    meetingId: str
    userId: str
    decision: Literal["admit", "deny"]


class HandResponse(BaseModel):
    meetingId: str
    handRaised: bool
    handRaisedAt: str | None = None


class WaitingResponse(BaseModel):
    status: Literal["waiting"]
    appointmentId: str
    meetingId: str | None = Field(None, description="null until the provider has started the meeting")
    retryAfterSeconds: int
