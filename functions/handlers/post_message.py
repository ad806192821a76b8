"""POST /meetings/{meetingId}/messages: store a chat message (201), or return the stored one for a retry
with the same clientMessageId (200)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.chat.models import PostMessageBody
from videocall.chat.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, body: PostMessageBody) -> Response[Any]:
    uid, request_id = caller()
    message, stored = runtime().chat.post(
        uid, meetingId, request_id, client_message_id=body.clientMessageId, text=body.text, reply_to=body.replyTo,
        attachment_id=body.attachmentId,
    )  # fmt: skip
    return json_response(201 if stored else 200, message)


handler = lambda_handler_for("post_message", ROUTES)
