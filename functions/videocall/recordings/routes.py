"""The recordings context's routes and the bodies its handlers answer with."""

from __future__ import annotations

from typing import Any

from videocall.core import errors as e
from videocall.core.routing import LIST_RECORDINGS, READ_RECORDINGS, START_RECORDING, STOP_RECORDING, Route
from videocall.recordings.models import RecordingsResponse, RecordingStatus, RecordingStatusResponse, RecordingsView

ROUTES: tuple[Route, ...] = (
    Route(
        "start_recording", "POST", "/meetings/{meetingId}/recording", "handlers.start_recording",
        "Start recording (clinical staff; needs the patient's consent); returns the running one if any",
        RecordingStatusResponse, 200, START_RECORDING,
        errors=(e.NotAClinicalController, e.MeetingNotFound, e.ConsentRequired, e.CreateInProgress,
                e.RecordingLimitReached, e.MeetingEnded, e.RecordingUnavailable),
    ),
    Route(
        "stop_recording", "DELETE", "/meetings/{meetingId}/recording", "handlers.stop_recording",
        "Stop recording (a no-op when none runs); transcription, if on, goes on in a capture that keeps no media",
        RecordingStatusResponse, 200, (*STOP_RECORDING, *START_RECORDING),
        errors=(e.NotAClinicalController, e.MeetingNotFound, e.CreateInProgress, e.MeetingEnded,
                e.RecordingUnavailable),
    ),
    Route(
        "get_recordings", "GET", "/meetings/{meetingId}/recording", "handlers.get_recordings",
        "The meeting's recordings with their artifacts; download links (expiring) for the provider",
        RecordingsResponse, 200, (*READ_RECORDINGS, *LIST_RECORDINGS),
        errors=(e.MeetingNotFound,),
    ),
)  # fmt: skip


def status_body(status: RecordingStatus) -> dict[str, Any]:
    body: dict[str, Any] = {"meetingId": status.meeting_id, "recordingState": status.state}
    if status.recording is not None:
        body["recording"] = status.recording
    if status.reason:
        body["reason"] = status.reason
    return body


def recordings_body(view: RecordingsView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "meetingId": view.meeting_id,
        "recordingState": view.state,
        "recordings": view.recordings,
    }
    if view.links_expire_in_seconds:
        body["linksExpireInSeconds"] = view.links_expire_in_seconds
    return body
