"""The consent API's bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from videocall.core.schema import StrictBody

Decision = Literal["granted", "refused"]
Shown = Literal["granted", "refused", "not_given"]


class ConsentBody(StrictBody):
    recording: Decision
    transcription: Decision
    aiProcessing: Decision


class ConsentResponse(BaseModel):
    appointmentId: str
    recording: Shown
    transcription: Shown
    aiProcessing: Shown
    source: Literal["patient", "external"] | None = Field(
        None, description="patient: given in the app; external: gathered outside, recorded by the provider"
    )
    recordedBy: str | None = None
    updatedAt: str | None = None
    recordingsStopped: int | None = Field(None, description="running recordings stopped by this withdrawal")
    recordingsStarted: int | None = Field(None, description="recordings started because consent was granted")
