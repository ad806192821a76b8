"""The recordings API's bodies, and the plain values the service hands to the routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

RecordingState = Literal["starting", "recording", "interrupted", "processing", "completed", "failed", "deleted"]
SessionRecordingState = Literal["off", "waiting_for_consent", "starting", "on", "interrupted"]


@dataclass(frozen=True)
class RecordingStatus:
    """What start/stop answer: the session's recording state and the recording concerned."""

    meeting_id: str
    state: str  # the session's: off | waiting_for_consent | starting | on | interrupted
    recording: dict[str, Any] | None = None
    reason: str | None = None  # why not on, when create asked for it: consent_required, clinician_only, ...


@dataclass
class RecordingsView:
    meeting_id: str
    state: str
    recordings: list[dict[str, Any]] = field(default_factory=list)
    links_expire_in_seconds: int | None = None


# --- response bodies (OpenAPI) ----------------------------------------------------------------------
class RecordingSummary(BaseModel):
    recordingId: str
    sequence: int
    state: RecordingState
    startedAt: str
    stoppedAt: str | None
    completedAt: str | None = None
    stopReason: str | None = None


class RecordingStatusResponse(BaseModel):
    meetingId: str
    recordingState: SessionRecordingState
    recording: RecordingSummary | None = None
    reason: str | None = Field(None, description="why recording is not on (create only)")


class Artifact(BaseModel):
    kind: str = Field(description="audio, composited-video, video, content, transcription-messages, ...")
    sizeBytes: int
    durationMs: int | None = Field(None, description="the capture's length, for audio and video")
    downloadUrl: str | None = Field(None, description="presigned, expires; provider only (patient by setting)")


class RecordingDetail(RecordingSummary):
    artifacts: list[Artifact]


class RecordingsResponse(BaseModel):
    meetingId: str
    recordingState: SessionRecordingState
    recordings: list[RecordingDetail]
    linksExpireInSeconds: int | None = None
