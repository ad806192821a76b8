"""POST /meetings/{meetingId}/attachments {fileName, contentType, size}: a presigned POST to upload one file."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.chat.models import AttachmentBody
from videocall.chat.routes import ROUTES
from videocall.http import MeetingIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, body: AttachmentBody) -> Response[Any]:
    uid, request_id = caller()
    upload = runtime().chat.create_attachment(
        uid, meetingId, request_id, file_name=body.fileName, content_type=body.contentType, size=body.size
    )
    return json_response(201, upload)


handler = lambda_handler_for("create_attachment", ROUTES)
