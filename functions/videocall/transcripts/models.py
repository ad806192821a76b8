"""The transcripts API's bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from videocall.core.languages import TranscriptionLanguage
from videocall.core.schema import StrictBody

TranscriptionState = Literal["off", "waiting_for_consent", "starting", "on", "interrupted", "failed"]


class StartTranscriptionBody(StrictBody):
    language: TranscriptionLanguage | None = Field(
        None, description="defaults to the meeting's transcriptionLanguage (create), else en-US"
    )
    specialty: Literal["PRIMARYCARE", "CARDIOLOGY", "NEUROLOGY", "ONCOLOGY", "RADIOLOGY", "UROLOGY"] | None = Field(
        None, description="Transcribe Medical specialty (en-US); defaults to the setting (PRIMARYCARE)"
    )


class TranscriptionStatusResponse(BaseModel):
    meetingId: str
    transcriptionState: TranscriptionState
    language: str | None = None
    engine: Literal["medical", "standard"] | None = None
    region: str | None = None
    reason: str | None = None


class Segment(BaseModel):
    sequence: int
    startMs: int
    endMs: int
    speakerUserId: str | None
    speakerRole: Literal["provider", "patient", "participant"]
    text: str
    confidence: float | None


class TranscriptResponse(BaseModel):
    meetingId: str
    transcriptionState: TranscriptionState
    processing: dict[str, Any] | None = Field(None, description="first page: transcript, medical and summary state")
    partialCoverage: bool | None = Field(
        None,
        description="more than two people spoke: Chime transcribes the two most active talkers at a time, "
        "so some speech may be missing",
    )
    segments: list[Segment]
    next: str | None = Field(None, description="opaque cursor for the next page (?after=)")
    entities: list[dict[str, Any]] | None = Field(None, description="first page, provider only")
    icd10Candidates: list[dict[str, Any]] | None = Field(
        None, description="first page, provider only: documentation candidates for review, never a diagnosis"
    )
    summary: dict[str, Any] | None = Field(None, description="first page, provider only: machine-generated draft")


class SummaryReviewResponse(BaseModel):
    meetingId: str
    summaryState: Literal["reviewed"]
    reviewedAt: str
