"""POST /meetings/{meetingId}/attendees/batch: add several users (group calls); per-user errors."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.meetings.models import AddAttendeesBody
from videocall.meetings.routes import ROUTES, batch_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, body: AddAttendeesBody) -> Response[Any]:
    uid, request_id = caller()
    result = runtime().service.add_attendees(uid, meetingId, body.userIds, request_id)
    return json_response(200, batch_body(result))


handler = lambda_handler_for("add_attendees", ROUTES)
