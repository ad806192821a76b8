"""GET /meetings/{meetingId}/lobby: who waits in the waiting room (clinical staff)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, {"meetingId": meetingId, "waiting": runtime().controls.lobby(uid, meetingId, request_id)})


handler = lambda_handler_for("get_lobby", ROUTES)
