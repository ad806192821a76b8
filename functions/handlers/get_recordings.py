"""GET /meetings/{meetingId}/recording: recordings, artifacts, expiring download links."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.recordings.routes import ROUTES, recordings_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, recordings_body(runtime().recordings.recordings(uid, meetingId, request_id)))


handler = lambda_handler_for("get_recordings", ROUTES)
