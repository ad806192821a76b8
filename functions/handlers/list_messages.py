"""GET /meetings/{meetingId}/messages?after=|before=&limit=: the chat history, keyset-paginated."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from videocall.chat.models import DEFAULT_PAGE, MAX_PAGE
from videocall.chat.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime

CursorParam = Annotated[str | None, Query(max_length=200, description="a cursor from a previous page")]


def endpoint(
    meetingId: MeetingIdParam,
    after: CursorParam = None,
    before: CursorParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response[Any]:
    uid, request_id = caller()
    page = runtime().chat.history(uid, meetingId, request_id, after=after, before=before, limit=limit)
    return json_response(200, page)


handler = lambda_handler_for("list_messages", ROUTES)
