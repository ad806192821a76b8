"""GET /meetings/{meetingId}/attachments/{attachmentId}: a download link that expires (after the malware scan)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from videocall.chat.routes import ROUTES
from videocall.core.schema import GUID_PATTERN
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime

AttachmentIdParam = Annotated[str, Path(pattern=GUID_PATTERN, description="The attachment id")]


def endpoint(meetingId: MeetingIdParam, attachmentId: AttachmentIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().chat.attachment_link(uid, meetingId, attachmentId, request_id))


handler = lambda_handler_for("get_attachment", ROUTES)
