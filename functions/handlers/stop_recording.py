"""DELETE /meetings/{meetingId}/recording: stop recording (a no-op when none runs)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.recordings.routes import ROUTES, status_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, status_body(workflows.stop_recording(runtime(), uid, meetingId, request_id)))


handler = lambda_handler_for("stop_recording", ROUTES)
