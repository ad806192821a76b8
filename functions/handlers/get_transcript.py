"""GET /meetings/{meetingId}/transcript?after=&limit=: the transcript by speaker, keyset-paginated."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime
from videocall.transcripts.routes import ROUTES, page_body


def endpoint(
    meetingId: MeetingIdParam,
    after: Annotated[str | None, Query(max_length=64, description="the `next` cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> Response[Any]:
    uid, request_id = caller()
    page = runtime().transcripts.transcript(uid, meetingId, request_id, after=after, limit=limit)
    return json_response(200, page_body(page))


handler = lambda_handler_for("get_transcript", ROUTES)
