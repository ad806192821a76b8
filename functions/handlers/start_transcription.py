"""POST /meetings/{meetingId}/transcription {language?, specialty?}: start live transcription."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime
from videocall.transcripts.models import StartTranscriptionBody
from videocall.transcripts.routes import ROUTES, status_body


def endpoint(meetingId: MeetingIdParam, body: StartTranscriptionBody | None = None) -> Response[Any]:
    uid, request_id = caller()
    language = body.language if body else None
    specialty = body.specialty if body else None
    status = runtime().transcripts.start(uid, meetingId, request_id, language=language, specialty=specialty)
    return json_response(200, status_body(status))


handler = lambda_handler_for("start_transcription", ROUTES)
