"""GET /meetings/{meetingId}: the session's state, for its participants."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.meetings.routes import ROUTES, state_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, state_body(runtime().service.get_meeting(uid, meetingId, request_id)))


handler = lambda_handler_for("get_meeting", ROUTES)
