"""The meetings context's routes and the bodies its handlers answer with."""

from __future__ import annotations

from typing import Any

from videocall.controls.admission import DOOR_ERRORS, WaitingRoomOnlyForClinicians
from videocall.controls.models import WaitingResponse
from videocall.core import errors as e
from videocall.core.routing import NOTIFY, START_RECORDING, Answer, Route
from videocall.meetings import models
from videocall.meetings.service import BatchJoinResult, EndResult, MeetingJoin, SessionState

ROUTES: tuple[Route, ...] = (
    Route(
        "create_meeting", "POST", "/meetings", "handlers.create_meeting",
        "Create the appointment's meeting, or return its live one, with the caller's attendee",
        models.MeetingJoinResponse, 201,
        ("chime:CreateMeeting", "chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee",
         "chime:DeleteMeeting", "chime:StartMeetingTranscription", *START_RECORDING, *NOTIFY),
        errors=(e.UnsupportedTranscriptionLanguage, e.NotAParticipant, e.VideoNotEnabled, e.AppointmentNotOpen,
                e.CreateInProgress, *DOOR_ERRORS, WaitingRoomOnlyForClinicians),
        also=(Answer(200, "The appointment's live meeting (created before), with the caller's attendee"),
              Answer(202, "A patient waits in the waiting room: no attendee; call again after Retry-After",
                     WaitingResponse)),
    ),
    Route(
        "join_meeting", "POST", "/meetings/{meetingId}/attendees", "handlers.join_meeting",
        "Join a meeting: the caller's attendee (202 while a patient waits in the lobby)",
        models.MeetingJoinResponse, 200,
        ("chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee", *NOTIFY),
        errors=(e.MeetingNotFound, e.MeetingEnded, *DOOR_ERRORS),
        also=(Answer(202, "A patient waits in the waiting room: no attendee; call again after Retry-After",
                     WaitingResponse),),
    ),
    Route(
        "add_attendees", "POST", "/meetings/{meetingId}/attendees/batch", "handlers.add_attendees",
        "Add several users to a meeting (group calls)", models.AddAttendeesResponse, 200,
        ("chime:BatchCreateAttendee",),
        errors=(e.NotAllowedToAddAttendees, e.MeetingNotFound, e.MeetingEnded),
    ),
    Route(
        "end_meeting", "DELETE", "/meetings/{meetingId}", "handlers.end_meeting",
        "End a meeting for everyone", models.EndMeetingResponse, 200, ("chime:DeleteMeeting",),
        errors=(e.NotAllowedToEnd, e.MeetingNotFound, e.MeetingEnded),
    ),
    Route(
        "get_meeting", "GET", "/meetings/{meetingId}", "handlers.get_meeting",
        "A meeting's state, for its participants", models.MeetingStateResponse, 200,
        errors=(e.MeetingNotFound,),
    ),
    Route(
        "chime_meeting_token", "POST", "/chime-meeting-token", "handlers.chime_meeting_token",
        "The app's original endpoint: {action: create | join | batch-join | end}", models.LegacyResponse, 200,
        ("chime:CreateMeeting", "chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee",
         "chime:BatchCreateAttendee", "chime:DeleteMeeting", "chime:StartMeetingTranscription", *START_RECORDING),
        errors=(e.UnknownAction, e.UnsupportedTranscriptionLanguage, e.NotAParticipant, e.VideoNotEnabled,
                e.NotAllowedToAddAttendees, e.NotAllowedToEnd, e.MeetingNotFound, e.AppointmentNotOpen,
                e.CreateInProgress, e.MeetingEnded, e.WaitingRoom, *DOOR_ERRORS, WaitingRoomOnlyForClinicians),
    ),
)  # fmt: skip


def meeting_join_body(result: MeetingJoin, *, with_flags: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"meeting": result.meeting, "attendee": result.attendee}
    if with_flags:
        body["recordingEnabled"] = result.recording_enabled
        body["transcriptionEnabled"] = result.transcription_enabled
    return body


def batch_body(result: BatchJoinResult) -> dict[str, Any]:
    return {"meetingId": result.meeting_id, "attendees": result.attendees, "errors": result.errors}


def end_body(result: EndResult) -> dict[str, Any]:
    return {
        "meetingId": result.meeting_id,
        "ended": True,
        "endedAt": result.ended_at,
        "alreadyEnded": result.already_ended,
    }


def state_body(state: SessionState) -> dict[str, Any]:
    return {
        "meetingId": state.meeting_id,
        "appointmentId": state.appointment_id,
        "status": state.status,
        "recordingEnabled": state.recording_enabled,
        "recordingState": state.recording_state,
        "transcriptionEnabled": state.transcription_enabled,
        "transcriptionLanguage": state.transcription_language,
        "createdAt": state.created_at,
        "endedAt": state.ended_at,
        "attendees": state.attendees,
    }
