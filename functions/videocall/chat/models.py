"""The chat API's bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from videocall.core.schema import GUID_PATTERN, StrictBody, whole_numbers
from videocall.core.settings import Settings

# The document states the default settings (CHAT_REACTIONS, ATTACHMENT_CONTENT_TYPES, ATTACHMENT_MAX_BYTES
# may narrow them per stage; the server checks the stage's own values and answers with its own codes).
REACTIONS: tuple[str, ...] = Settings.chat_reactions
CONTENT_TYPES: tuple[str, ...] = Settings.attachment_content_types
MAX_ATTACHMENT_BYTES: int = Settings.attachment_max_bytes
# A file name: printable, not only spaces (no control characters: it ends up in Content-Disposition).
FILE_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

# A message, with its JSON envelope, must fit one Chime data message (2 KB): the text gets 1,500 bytes.
MAX_TEXT_BYTES = 1500
CLIENT_MESSAGE_ID_PATTERN = r"^[-_a-zA-Z0-9]{1,64}$"
MAX_PAGE = 200
DEFAULT_PAGE = 50


class PostMessageBody(StrictBody):
    # Text, an attachment, or both: an empty message is 400 message_empty.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
        {"required": ["attachmentId"], "properties": {"attachmentId": {"type": "string"}}},
    ]})  # fmt: skip

    clientMessageId: Annotated[str, Field(pattern=CLIENT_MESSAGE_ID_PATTERN)] = Field(
        description="the client's id for this message (e.g. a UUID): a retry with the same id returns the stored "
        "message (200) instead of storing a second one; also the id to de-duplicate the data-channel copy with"
    )
    # The limit is 1,500 bytes of UTF-8, checked by the service (400 message_too_long); the body's own
    # size cap bounds what reaches it.
    text: str = Field("", description="at most 1,500 bytes of UTF-8")
    replyTo: Annotated[str, Field(pattern=GUID_PATTERN)] | None = Field(None, description="a message id")
    attachmentId: Annotated[str, Field(pattern=GUID_PATTERN)] | None = Field(
        None, description="an attachment the caller uploaded for this appointment (POST .../attachments)"
    )


class ReadBody(StrictBody):
    upTo: Annotated[str, Field(pattern=GUID_PATTERN)] = Field(description="the newest message id read")


class ReactionBody(StrictBody):
    emoji: str = Field(
        description="one of the allowed reactions (400 unknown_reaction otherwise)",
        json_schema_extra={"enum": list(REACTIONS)},
    )


class AttachmentBody(StrictBody):
    fileName: Annotated[str, Field(min_length=1, max_length=255, pattern=FILE_NAME_PATTERN)]
    contentType: str = Field(
        description="one of the allowed types (415 attachment_type_not_allowed otherwise)",
        json_schema_extra={"enum": list(CONTENT_TYPES)},
    )
    size: Annotated[int, Field(ge=1)] = Field(
        description="bytes; the upload policy allows at most this many (413 attachment_too_large over the cap)",
        json_schema_extra={"maximum": MAX_ATTACHMENT_BYTES},
    )
    _whole = whole_numbers("size")


# --- response bodies (OpenAPI) ---------------------------------------------------------------------
class AttachmentInfo(BaseModel):
    attachmentId: str
    fileName: str
    contentType: str
    sizeBytes: int


class ReactionCount(BaseModel):
    emoji: str
    count: int
    mine: bool = Field(description="the caller reacted with this emoji")


class Message(BaseModel):
    messageId: str
    seq: int = Field(description="position in the conversation (commit order); gaps are possible")
    clientMessageId: str
    meetingId: str = Field(description="the meeting (session) it was sent in")
    senderId: str
    senderRole: str = Field(description="provider, patient or participant")
    text: str
    replyTo: str | None = None
    attachment: AttachmentInfo | None = None
    createdAt: str
    reactions: list[ReactionCount] = Field(default_factory=list)


class MessageResponse(Message):
    pass


class ReadReceipt(BaseModel):
    userId: str
    readUpToSeq: int = Field(description="the participant has read every message with seq up to this")
    readAt: str


class MessagePage(BaseModel):
    meetingId: str
    messages: list[Message] = Field(description="oldest first")
    readReceipts: list[ReadReceipt]
    next: str = Field(description="cursor for ?after= (poll for newer messages)")
    previous: str | None = Field(None, description="cursor for ?before= (older messages); null at the beginning")
    hasMore: bool = Field(description="more messages in this page's direction (newer for after=, else older)")
    reactionsAllowed: list[str]


class ReadResponse(BaseModel):
    meetingId: str
    readUpToSeq: int


class ReactionResponse(BaseModel):
    messageId: str
    reactions: list[ReactionCount]


class UploadForm(BaseModel):
    url: str
    fields: dict[str, str] = Field(description="send every field, then the file as the last field, `file`")


class AttachmentUploadResponse(BaseModel):
    attachmentId: str
    upload: UploadForm
    expiresInSeconds: int
    maxBytes: int


class AttachmentLinkResponse(BaseModel):
    attachmentId: str
    fileName: str
    contentType: str
    sizeBytes: int
    downloadUrl: str
    expiresInSeconds: int
