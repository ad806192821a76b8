"""POST /meetings/{meetingId}/messages/read {upTo}: the caller's read receipt (never moves back)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.chat.models import ReadBody
from videocall.chat.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, body: ReadBody) -> Response[Any]:
    uid, request_id = caller()
    seq = runtime().chat.mark_read(uid, meetingId, body.upTo, request_id)
    return json_response(200, {"meetingId": meetingId, "readUpToSeq": seq})


handler = lambda_handler_for("mark_messages_read", ROUTES)
