"""POST /chime-meeting-token: the app's original contract, one endpoint with an `action` field.

Dispatches to the same domain functions as the REST routes; bodies and status codes are the old
ones (200 on success), so the app only changes its base URL.
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from videocall import workflows
from videocall.controls.admission import MustWait
from videocall.controls.service import Waiting
from videocall.core.errors import WaitingRoom
from videocall.http import caller, json_response, lambda_handler_for
from videocall.meetings.models import LegacyBatchJoin, LegacyCreate, LegacyEnd, LegacyJoin, LegacyRequest
from videocall.meetings.routes import ROUTES, batch_body, end_body, meeting_join_body
from videocall.meetings.service import CreateMeetingCommand
from videocall.runtime import runtime


def endpoint(body: Annotated[LegacyRequest, Body()]) -> Response[Any]:
    uid, request_id = caller()
    service = runtime().service
    match body:
        case LegacyCreate():
            command = CreateMeetingCommand(
                appointment_id=body.appointmentId,
                enable_recording=body.enableRecording,
                enable_transcription=body.enableTranscription,
                transcription_language=body.transcriptionLanguage,
                waiting_room=body.waitingRoom,
            )
            # The old app knows no 202: a patient of a consultation with a waiting room gets 409 waiting_room
            # (and is not put in the lobby, where the clinician would wait for an app that never polls).
            created = workflows.create_meeting(runtime(), uid, command, request_id, lobby=False)
            assert not isinstance(created, Waiting)
            # The old response shape, unchanged; recording starts as the flag always promised.
            return json_response(200, meeting_join_body(created.join, with_flags=True))
        case LegacyJoin():
            try:
                joined = service.join_meeting(uid, body.meetingId, request_id)
            except MustWait:
                raise WaitingRoom() from None
            return json_response(200, meeting_join_body(joined, with_flags=False))
        case LegacyBatchJoin():
            return json_response(200, batch_body(service.add_attendees(uid, body.meetingId, body.userIds, request_id)))
        case LegacyEnd():
            return json_response(200, end_body(service.end_meeting(uid, body.meetingId, request_id)))
    raise AssertionError("unreachable: the body model admits only the four actions")


handler = lambda_handler_for("chime_meeting_token", ROUTES)
