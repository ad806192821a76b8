"""GET /meetings/{meetingId}/participants: everyone in the call with presence, what they may send, hands."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    people = runtime().controls.participants(uid, meetingId, request_id)
    return json_response(200, {"meetingId": meetingId, "participants": people})


handler = lambda_handler_for("list_participants", ROUTES)
