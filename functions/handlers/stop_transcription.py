"""DELETE /meetings/{meetingId}/transcription: stop live transcription (a no-op when none runs)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime
from videocall.transcripts.routes import ROUTES, status_body


def endpoint(meetingId: MeetingIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, status_body(workflows.stop_transcription(runtime(), uid, meetingId, request_id)))


handler = lambda_handler_for("stop_transcription", ROUTES)
