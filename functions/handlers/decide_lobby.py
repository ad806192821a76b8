"""POST /meetings/{meetingId}/lobby/{userId}: admit or deny someone waiting (clinical staff)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.controls.models import LobbyDecisionBody
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, UserIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, userId: UserIdParam, body: LobbyDecisionBody) -> Response[Any]:
    uid, request_id = caller()
    decision = workflows.decide_lobby(runtime(), uid, meetingId, userId, body.decision, request_id)
    return json_response(200, {"meetingId": decision.meeting_id, "userId": decision.user_id,
                               "decision": decision.decision})  # fmt: skip


handler = lambda_handler_for("decide_lobby", ROUTES)
