"""PUT /meetings/{meetingId}/messages/{messageId}/reaction {emoji}: set the caller's reaction."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from videocall.chat.models import ReactionBody
from videocall.chat.routes import ROUTES
from videocall.core.schema import GUID_PATTERN
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime

MessageIdParam = Annotated[str, Path(pattern=GUID_PATTERN, description="The message id")]


def endpoint(meetingId: MeetingIdParam, messageId: MessageIdParam, body: ReactionBody) -> Response[Any]:
    uid, request_id = caller()
    reactions = runtime().chat.react(uid, meetingId, messageId, body.emoji, request_id)
    return json_response(200, {"messageId": messageId, "reactions": reactions})


handler = lambda_handler_for("put_reaction", ROUTES)
