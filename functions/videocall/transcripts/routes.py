"""The transcripts context's routes and the bodies its handlers answer with."""

from __future__ import annotations

from typing import Any

from videocall.core import errors as e
from videocall.core.routing import START_RECORDING, STOP_RECORDING, Route
from videocall.transcripts import models
from videocall.transcripts.service import TranscriptionStatus, TranscriptPage

START_TRANSCRIPTION = ("chime:StartMeetingTranscription", *START_RECORDING)

ROUTES: tuple[Route, ...] = (
    Route(
        "start_transcription", "POST", "/meetings/{meetingId}/transcription", "handlers.start_transcription",
        "Start live transcription (clinical staff; needs the patient's transcription consent)",
        models.TranscriptionStatusResponse, 200, START_TRANSCRIPTION,
        errors=(e.UnsupportedTranscriptionLanguage, e.NotAClinicalController, e.MeetingNotFound,
                e.ConsentRequired, e.MeetingEnded),
    ),
    Route(
        "stop_transcription", "DELETE", "/meetings/{meetingId}/transcription", "handlers.stop_transcription",
        "Stop live transcription (a no-op when none runs)", models.TranscriptionStatusResponse, 200,
        ("chime:StopMeetingTranscription", *STOP_RECORDING),
        errors=(e.NotAClinicalController, e.MeetingNotFound, e.MeetingEnded),
    ),
    Route(
        "get_transcript", "GET", "/meetings/{meetingId}/transcript", "handlers.get_transcript",
        "The transcript by speaker (paginated); on the first page, for clinical staff, the medical entities, "
        "ICD-10 candidates and the draft summary", models.TranscriptResponse, 200,
        errors=(e.MeetingNotFound,),
    ),
    Route(
        "review_summary", "POST", "/meetings/{meetingId}/transcript/summary/review", "handlers.review_summary",
        "The provider marks the machine-generated draft summary as reviewed", models.SummaryReviewResponse, 200,
        errors=(e.MeetingNotFound,),
    ),
)  # fmt: skip


def status_body(status: TranscriptionStatus) -> dict[str, Any]:
    body: dict[str, Any] = {"meetingId": status.meeting_id, "transcriptionState": status.state,
                            "language": status.language, "engine": status.engine, "region": status.region}  # fmt: skip
    if status.reason:
        body["reason"] = status.reason
    return body


def page_body(page: TranscriptPage) -> dict[str, Any]:
    body: dict[str, Any] = {"meetingId": page.meeting_id, "transcriptionState": page.state,
                            "segments": page.segments, "next": page.next_cursor}  # fmt: skip
    if page.first_page is not None:
        body.update(page.first_page)
    return body
