"""POST /meetings/{meetingId}/recording: start recording (clinical staff, with consent)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.recordings.routes import ROUTES, status_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, status_body(runtime().recordings.start(uid, meetingId, request_id)))


handler = lambda_handler_for("start_recording", ROUTES)
