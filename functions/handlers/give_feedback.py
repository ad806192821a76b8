"""POST /meetings/{meetingId}/feedback: the post-call survey (any participant; a second answer replaces the first)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.feedback.models import FeedbackBody
from videocall.feedback.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, body: FeedbackBody) -> Response[Any]:
    uid, request_id = caller()
    result = runtime().feedback.give(
        uid, meetingId, rating=body.rating, issues=list(body.issues), comment=body.comment, request_id=request_id
    )
    return json_response(200, result)


handler = lambda_handler_for("give_feedback", ROUTES)
