"""The chat context's routes.

AWS actions name the attachments bucket and key with `@attachments` (infra/components/iam.py grants
them there, never on the recordings bucket or `*`): the download link is signed with the function's
own credentials, so its role needs s3:GetObject (and kms:Decrypt) on the attachments; the upload link
likewise needs s3:PutObject (and kms:GenerateDataKey, for SSE-KMS). Presigning itself makes no call.
"""

from __future__ import annotations

from videocall.chat import models
from videocall.core import errors as e
from videocall.core.routing import READ_ATTACHMENTS, UPLOAD_ATTACHMENTS, Answer, Route

_SEEN = (e.MeetingNotFound,)  # participants only: anyone else meets the meeting's 404

ROUTES: tuple[Route, ...] = (
    Route(
        "post_message", "POST", "/meetings/{meetingId}/messages", "handlers.post_message",
        "Store a chat message (participants; idempotent on clientMessageId: a retry answers 200 with the stored one)",
        models.MessageResponse, 201,
        errors=(*_SEEN, e.MessageTooLong, e.MessageEmpty, e.ReplyToNotFound, e.AttachmentNotAvailable),
        also=(Answer(200, "A retry: the message stored before with this clientMessageId"),),
    ),
    Route(
        "list_messages", "GET", "/meetings/{meetingId}/messages", "handlers.list_messages",
        "The appointment's chat history the caller may see, keyset-paginated (newest page by default; "
        "?after= to poll for newer, ?before= to scroll back), with reactions and read receipts",
        models.MessagePage, 200, errors=(*_SEEN, e.InvalidCursor),
    ),
    Route(
        "mark_messages_read", "POST", "/meetings/{meetingId}/messages/read", "handlers.mark_messages_read",
        "Read receipt: the caller has read the conversation up to this message", models.ReadResponse, 200,
        errors=(*_SEEN, e.MessageNotFound),
    ),
    Route(
        "put_reaction", "PUT", "/meetings/{meetingId}/messages/{messageId}/reaction", "handlers.put_reaction",
        "Set the caller's reaction to a message (one of a fixed set; one per user per message)",
        models.ReactionResponse, 200, errors=(*_SEEN, e.MessageNotFound, e.UnknownReaction),
    ),
    Route(
        "delete_reaction", "DELETE", "/meetings/{meetingId}/messages/{messageId}/reaction",
        "handlers.delete_reaction", "Remove the caller's reaction to a message", models.ReactionResponse, 200,
        errors=(*_SEEN, e.MessageNotFound),
    ),
    Route(
        "create_attachment", "POST", "/meetings/{meetingId}/attachments", "handlers.create_attachment",
        "A presigned POST to upload a file (size and type enforced by its policy) into the attachments bucket",
        models.AttachmentUploadResponse, 201, UPLOAD_ATTACHMENTS,
        errors=(*_SEEN, e.AttachmentTooLarge, e.AttachmentTypeNotAllowed),
    ),
    Route(
        "get_attachment", "GET", "/meetings/{meetingId}/attachments/{attachmentId}", "handlers.get_attachment",
        "A download link that expires, for those who see the message; only once the malware scan passed",
        models.AttachmentLinkResponse, 200, READ_ATTACHMENTS,
        errors=(*_SEEN, e.AttachmentNotFound, e.AttachmentNotUploaded, e.AttachmentNotScanned, e.AttachmentBlocked),
    ),
)  # fmt: skip
