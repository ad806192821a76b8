"""POST /meetings/{meetingId}/attendees: the caller's attendee in the meeting (202 while a patient waits
in the lobby of a consultation with a waiting room)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.controls.routes import waiting_body
from videocall.controls.service import Waiting
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.meetings.routes import ROUTES, meeting_join_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    result = workflows.join_meeting(runtime(), uid, meetingId, request_id)
    if isinstance(result, Waiting):
        return json_response(202, *waiting_body(result))
    return json_response(200, meeting_join_body(result, with_flags=False))


handler = lambda_handler_for("join_meeting", ROUTES)
