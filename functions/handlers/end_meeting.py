"""DELETE /meetings/{meetingId}: end the meeting for everyone (provider, or a non-patient creator)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.meetings.routes import ROUTES, end_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, end_body(runtime().service.end_meeting(uid, meetingId, request_id)))


handler = lambda_handler_for("end_meeting", ROUTES)
