"""POST /meetings/{meetingId}/transcript/summary/review: the provider marks the draft summary reviewed."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime
from videocall.transcripts.routes import ROUTES


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    reviewed_at = runtime().transcripts.review_summary(uid, meetingId, request_id)
    return json_response(200, {"meetingId": meetingId, "summaryState": "reviewed", "reviewedAt": reviewed_at})


handler = lambda_handler_for("review_summary", ROUTES)
