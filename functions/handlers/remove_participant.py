"""DELETE /meetings/{meetingId}/participants/{userId}: remove someone from the call (clinical staff);
they cannot rejoin unless admitted again."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, UserIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, userId: UserIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().controls.remove(uid, meetingId, userId, request_id))


handler = lambda_handler_for("remove_participant", ROUTES)
