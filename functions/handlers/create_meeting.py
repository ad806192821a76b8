"""POST /meetings: create the appointment's meeting (or return its live one) with the caller's attendee;
with enableRecording, recording starts (or the answer says why not). A patient of a consultation with a
waiting room gets 202 (waiting) until the clinician admits them."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.controls.routes import waiting_body
from videocall.controls.service import Waiting
from videocall.http import caller, json_response, lambda_handler_for
from videocall.meetings.models import CreateMeetingBody
from videocall.meetings.routes import ROUTES, meeting_join_body
from videocall.meetings.service import CreateMeetingCommand
from videocall.runtime import runtime


def endpoint(body: CreateMeetingBody) -> Response[Any]:
    uid, request_id = caller()
    command = CreateMeetingCommand(
        appointment_id=body.appointmentId,
        enable_recording=body.enableRecording,
        enable_transcription=body.enableTranscription,
        transcription_language=body.transcriptionLanguage,
        waiting_room=body.waitingRoom,
    )
    result = workflows.create_meeting(runtime(), uid, command, request_id)
    if isinstance(result, Waiting):
        return json_response(202, *waiting_body(result))
    response = meeting_join_body(result.join, with_flags=True)
    if result.recording is not None:
        response["recording"] = {"state": result.recording.state, "reason": result.recording.reason}
    if result.transcription is not None:
        response["transcription"] = {"state": result.transcription.state, "reason": result.transcription.reason}
    return json_response(201 if result.join.created else 200, response)


handler = lambda_handler_for("create_meeting", ROUTES)
