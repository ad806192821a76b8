"""POST /meetings: create the appointment's meeting (or return its live one) with the caller's attendee."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import FirebaseUid, RequestId, json_response, lambda_handler_for
from videocall.meetings.models import CreateMeetingBody
from videocall.meetings.routes import meeting_join_body
from videocall.meetings.service import CreateMeetingCommand
from videocall.runtime import runtime


def endpoint(body: CreateMeetingBody, uid: FirebaseUid, request_id: RequestId) -> Response[Any]:
    command = CreateMeetingCommand(
        appointment_id=body.appointmentId,
        enable_recording=body.enableRecording,
        enable_transcription=body.enableTranscription,
        transcription_language=body.transcriptionLanguage,
    )
    result = runtime().service.create_meeting(uid, command, request_id)
    return json_response(201 if result.created else 200, meeting_join_body(result, with_flags=True))


handler = lambda_handler_for("create_meeting")
