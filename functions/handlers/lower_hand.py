"""DELETE /meetings/{meetingId}/hand: Lower the caller's hand (any participant)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().controls.hand(uid, meetingId, False, request_id))


handler = lambda_handler_for("lower_hand", ROUTES)
