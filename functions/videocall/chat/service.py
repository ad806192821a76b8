"""The in-call chat's durable history.

Live delivery is the clients' job, on Chime data messages; this API is the durable record: the app
sends on the data channel, POSTs for persistence, and de-duplicates by clientMessageId.

- The conversation is the APPOINTMENT's: a meeting recreated for the appointment continues it, and its
  provider and patient see the whole history. A user added to a group call (batch-join) sees the
  messages of the meetings they were part of only (videocall.chat.repository.VISIBLE).
- Order: each message gets the conversation's next `seq` under the conversation row's lock, held to
  commit, so seq order is commit order and `after=` polling never skips a late committer.
- Posting is idempotent on (sender, clientMessageId): a retry returns the stored message (200).
- Attachments: a presigned POST into the attachments bucket (size and type enforced by the policy),
  a presigned GET that expires for whoever sees the message, only once GuardDuty tagged the object
  NO_THREATS_FOUND (ATTACHMENT_SCAN_REQUIRED, on in every deployed stage: an object not scanned yet
  answers 409 attachment_not_scanned with Retry-After; locally nothing scans and the setting is off,
  so an untagged object is served, but a threat tag is refused everywhere). Every link is audited.
- Message text and file names are patient data: never logged, never in audit details or errors.

Database round trips and AWS calls per action (held by tests/test_chat.py):
| action | round trips | AWS calls |
|---|---|---|
| post a message | 2 (context: authorizes, finds a retry; the idempotent insert with its audit row); retry: 1 | - |
| history page | 1 (context, page, reactions, receipts and the audit row in one statement) | - |
| read receipt, reaction | 2 (context with the message; the change with its audit row) | - |
| upload link | 2 (context; the attachment row with its audit row) | - (the POST is signed locally) |
| download link | 2 (context with the attachment; the audit row) | 1 (GetObjectTagging) |
A denial costs one round trip more (its audit row).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from videocall.chat.models import MAX_TEXT_BYTES
from videocall.chat.repository import ChatRepository, MessageConflict
from videocall.chat.storage import NO_THREATS, AttachmentStore, object_key
from videocall.core.access import Appointment, Caller
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate
from videocall.core.db import Row
from videocall.core.errors import (
    AttachmentBlocked,
    AttachmentNotAvailable,
    AttachmentNotFound,
    AttachmentNotScanned,
    AttachmentNotUploaded,
    AttachmentTooLarge,
    AttachmentTypeNotAllowed,
    DomainError,
    InvalidCursor,
    InvalidRequest,
    MeetingEnded,
    MeetingNotFound,
    MessageEmpty,
    MessageNotFound,
    MessageTooLong,
    ReplyToNotFound,
    UnknownReaction,
)
from videocall.core.observability import MetricUnit, count_failure, logger, metrics

_CURSOR = re.compile(r"^([-_a-zA-Z0-9]{2,64})\.(\d{1,19})$")
_MAC_BYTES = 16
_DEFAULT_CURSOR_KEY = b"videocall-chat-cursor-v1"
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class Cursor:
    appointment_id: str
    seq: int


class CursorCodec:
    """Opaque cursors: `<appointmentId>.<seq>` with an HMAC, base64url. A changed byte, or a cursor of
    another conversation, is 400 invalid_cursor. The HMAC detects tampering; it is not what keeps other
    conversations private: the page statement reads only the meeting's own conversation, and only for
    a participant (the cursor's conversation must be the meeting's, in SQL and again here)."""

    def __init__(self, key: str = "") -> None:
        self._key = key.encode() if key else _DEFAULT_CURSOR_KEY

    def _mac(self, raw: bytes) -> bytes:
        return hmac.new(self._key, b"chat-cursor-v1|" + raw, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, appointment_id: str, seq: int) -> str:
        raw = f"{appointment_id}.{seq}".encode()
        return base64.urlsafe_b64encode(raw + self._mac(raw)).decode().rstrip("=")

    def decode(self, cursor: str) -> Cursor:
        try:
            blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor() from None
        raw, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
        if len(blob) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(raw)):
            raise InvalidCursor()
        found = _CURSOR.match(raw.decode("ascii", "replace"))
        if not found or int(found.group(2)) > MAX_SEQ:
            raise InvalidCursor()
        return Cursor(found.group(1), int(found.group(2)))


def text_problem(text: str, attachment_id: str | None) -> DomainError | None:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        return MessageTooLong()
    if not text.strip() and not attachment_id:
        return MessageEmpty()
    return None


class ChatService:
    def __init__(
        self, chat: ChatRepository, gate: AccessGate, *, store: Callable[[], AttachmentStore],
        reactions: tuple[str, ...], content_types: tuple[str, ...], max_bytes: int, scan_required: bool,
        cursor_key: str = "",
    ) -> None:  # fmt: skip
        self._chat = chat
        self._gate = gate
        self._store = store  # built on first use: reading history never creates an S3 client
        self.reactions = reactions
        self._content_types = content_types
        self._max_bytes = max_bytes
        self._scan_required = scan_required
        self.cursors = CursorCodec(cursor_key)

    # --- messages ----------------------------------------------------------------------------------
    def post(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, *, client_message_id: str, text: str,
        reply_to: str | None = None, attachment_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """The message, and whether this call stored it (False: a retry, the stored one)."""
        problem = text_problem(text, attachment_id)
        if problem is not None:
            raise problem
        row = self._chat.post_context(firebase_uid, meeting_id, client_message_id=client_message_id,
                                      reply_to=reply_to, attachment_id=attachment_id)  # fmt: skip
        caller, appointment = self._participant(row, meeting_id, "chat.post", request_id)
        assert row is not None
        if row["existing_message"] is not None:
            return dict(row["existing_message"]), False  # a retry, even after the meeting ended
        self._live(row)
        if not row["reply_ok"]:
            raise ReplyToNotFound()
        if not row["attachment_ok"]:
            raise AttachmentNotAvailable()
        try:
            message, inserted = self._chat.insert_message(
                appointment_id=appointment.id, session_id=row["session_id"], sender_id=caller.user_id,
                client_message_id=client_message_id, text=text, reply_to=reply_to, attachment_id=attachment_id,
                provider_id=appointment.provider_id, patient_id=appointment.patient_id,
                audit=self._audit(caller, "chat.post", appointment, meeting_id, request_id,
                                  details={"reply": reply_to is not None, "attachment_id": attachment_id}),
            )  # fmt: skip
        except MessageConflict:
            raise (AttachmentNotAvailable() if attachment_id else ReplyToNotFound()) from None
        if inserted:
            metrics.add_metric(name="ChatMessagesPosted", unit=MetricUnit.Count, value=1)
        return message, inserted

    def history(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, *, after: str | None = None,
        before: str | None = None, limit: int = 50,
    ) -> dict[str, Any]:  # fmt: skip
        # The caller is authorized before their input is judged: a meeting they are not part of answers 404
        # whatever the cursor (a bad cursor then reads the newest page, which is dropped, and answers 400).
        refused: DomainError | None = InvalidRequest("Give after or before, not both.") if after and before else None
        cursor = None
        if (after or before) and refused is None:
            try:
                cursor = self.cursors.decode(after or before or "")
            except InvalidCursor as bad:
                refused = bad
        row = self._chat.page(
            firebase_uid, meeting_id, after=cursor.seq if (cursor and after) else None,
            before=cursor.seq if (cursor and before) else None, limit=limit,
            cursor_appointment=cursor.appointment_id if cursor else None, audit_action="chat.history",
            request_id=request_id,
        )  # fmt: skip
        _, appointment = self._participant(row, meeting_id, "chat.history", request_id)
        assert row is not None
        if refused is not None:
            raise refused
        if cursor is not None and cursor.appointment_id != appointment.id:
            raise InvalidCursor()
        if not row["sql_participant"]:
            # The SQL twin of authorize_join disagrees with it: hand out nothing (tests hold them together).
            logger.error("chat participant rules disagree", extra={"meeting_id": meeting_id})
            count_failure("chat_rule_mismatch")
            raise MeetingNotFound()
        rows: list[dict[str, Any]] = list(row["messages"])
        ascending = after is not None
        has_more = len(rows) > limit
        if has_more:
            rows = rows[:limit] if ascending else rows[-limit:]
        if rows:
            newest, oldest = rows[-1]["seq"], rows[0]["seq"]
            previous = self.cursors.encode(appointment.id, oldest) if (ascending or has_more) else None
        else:
            newest = cursor.seq if (cursor and ascending) else max((cursor.seq - 1) if cursor else 0, 0)
            previous = None
        return {
            "meetingId": meeting_id, "messages": rows, "readReceipts": list(row["receipts"] or []),
            "next": self.cursors.encode(appointment.id, newest), "previous": previous, "hasMore": has_more,
            "reactionsAllowed": list(self.reactions),
        }  # fmt: skip

    # --- read receipts and reactions ----------------------------------------------------------------
    def mark_read(self, firebase_uid: str, meeting_id: str, up_to: str, request_id: str | None) -> int:
        row, caller, appointment = self._message(firebase_uid, meeting_id, up_to, "chat.read", request_id)
        return self._chat.mark_read(
            appointment_id=appointment.id, user_id=caller.user_id, seq=row["message_seq"], session_id=row["session_id"],
            audit=self._audit(caller, "chat.read", appointment, meeting_id, request_id,
                              details={"message_id": up_to, "seq": row["message_seq"]}),
        )  # fmt: skip

    def react(
        self, firebase_uid: str, meeting_id: str, message_id: str, emoji: str | None, request_id: str | None
    ) -> list[dict[str, Any]]:
        """Set (emoji) or remove (None) the caller's reaction; the message's reactions after the change."""
        if emoji is not None and emoji not in self.reactions:
            raise UnknownReaction()
        row, caller, appointment = self._message(firebase_uid, meeting_id, message_id, "chat.react", request_id)
        audit = self._audit(caller, "chat.react" if emoji else "chat.unreact", appointment, meeting_id, request_id,
                            details={"message_id": message_id, "emoji": emoji})  # fmt: skip
        if emoji is not None:
            self._chat.set_reaction(message_id=message_id, user_id=caller.user_id, emoji=emoji,
                                    session_id=row["session_id"], audit=audit)  # fmt: skip
        elif row["my_emoji"] is not None:
            self._chat.delete_reaction(message_id=message_id, user_id=caller.user_id, session_id=row["session_id"],
                                       audit=audit)  # fmt: skip
        return _after_change(list(row["reactions"] or []), row["my_emoji"], emoji)

    # --- attachments ---------------------------------------------------------------------------------
    def create_attachment(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, *, file_name: str, content_type: str,
        size: int,
    ) -> dict[str, Any]:  # fmt: skip
        kind = content_type.strip().lower()
        if kind not in self._content_types:
            raise AttachmentTypeNotAllowed(f"Allowed types: {', '.join(self._content_types)}.")
        if size > self._max_bytes:
            raise AttachmentTooLarge(f"Files of at most {self._max_bytes} bytes can be attached.")
        if not file_name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in file_name):
            raise InvalidRequest("fileName must be a plain file name.")
        # Invisible format characters go (U+202E would show "invoice<RLO>fdp.exe" as "invoiceexe.pdf").
        file_name = "".join(c for c in file_name if unicodedata.category(c) != "Cf").strip() or "attachment"
        row = self._chat.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._participant(row, meeting_id, "chat.attachment_upload", request_id)
        assert row is not None
        self._live(row)
        attachment_id = str(uuid.uuid4())
        key = object_key(appointment.id, attachment_id)
        store = self._store()
        upload = store.presigned_post(key, content_type=kind, size=size)
        self._chat.create_attachment(
            attachment_id=attachment_id, appointment_id=appointment.id, session_id=row["session_id"],
            uploaded_by=caller.user_id, s3_key=key, file_name=file_name, content_type=kind, size=size,
            audit=self._audit(caller, "chat.attachment_upload_link", appointment, meeting_id, request_id,
                              details={"attachment_id": attachment_id, "content_type": kind, "size": size}),
        )  # fmt: skip
        return {"attachmentId": attachment_id, "upload": {"url": upload.url, "fields": upload.fields},
                "expiresInSeconds": store.upload_seconds, "maxBytes": size}  # fmt: skip

    def attachment_link(
        self, firebase_uid: str, meeting_id: str, attachment_id: str, request_id: str | None
    ) -> dict[str, Any]:
        row = self._chat.attachment_context(firebase_uid, meeting_id, attachment_id)
        caller, appointment = self._participant(row, meeting_id, "chat.attachment_link", request_id)
        assert row is not None
        if row["attachment_id"] is None:
            raise AttachmentNotFound()
        store = self._store()
        try:
            scanned = store.scan_status(row["s3_key"])
        except LookupError:
            raise AttachmentNotUploaded() from None
        verdict = scanned.verdict
        refusal = self.scan_refusal(verdict)
        if refusal is not None:
            self._chat.audit(self._audit(caller, "chat.attachment_link", appointment, meeting_id, request_id,
                                         outcome="denied", details={"attachment_id": attachment_id,
                                                                    "reason": refusal.code, "scan": verdict}),
                             row["session_id"])  # fmt: skip
            count_failure(refusal.code)
            raise refusal
        url = store.download_link(row["s3_key"], row["file_name"], version_id=scanned.version_id,
                                  content_type=row["content_type"])  # fmt: skip
        self._chat.audit(self._audit(caller, "chat.attachment_link", appointment, meeting_id, request_id,
                                     details={"attachment_id": attachment_id}), row["session_id"])  # fmt: skip
        metrics.add_metric(name="AttachmentLinksIssued", unit=MetricUnit.Count, value=1)
        return {"attachmentId": attachment_id, "fileName": row["file_name"], "contentType": row["content_type"],
                "sizeBytes": row["size_bytes"], "downloadUrl": url, "expiresInSeconds": store.link_seconds}  # fmt: skip

    def scan_refusal(self, verdict: str | None) -> DomainError | None:
        """Why an object may not be handed out: a verdict other than NO_THREATS_FOUND (threats, unsupported,
        failed, access denied), or no verdict yet where scanning is required."""
        if verdict is None:
            return AttachmentNotScanned() if self._scan_required else None
        if verdict != NO_THREATS:
            metrics.add_metric(name="AttachmentsBlocked", unit=MetricUnit.Count, value=1)
            return AttachmentBlocked()
        return None

    # --- shared -----------------------------------------------------------------------------------------
    def _participant(
        self, row: Row | None, meeting_id: str, action: str, request_id: str | None
    ) -> tuple[Caller, Appointment]:
        return self._gate.participant(row, meeting_id=meeting_id, action=action, request_id=request_id)

    def _message(
        self, firebase_uid: str, meeting_id: str, message_id: str, action: str, request_id: str | None
    ) -> tuple[Row, Caller, Appointment]:
        row = self._chat.message_context(firebase_uid, meeting_id, message_id)
        caller, appointment = self._participant(row, meeting_id, action, request_id)
        assert row is not None
        if row["message_id"] is None:
            raise MessageNotFound()
        return row, caller, appointment

    @staticmethod
    def _live(row: Row) -> None:
        if row["session_status"] in ("ended", "failed"):
            raise MeetingEnded("The meeting has ended; its chat history can still be read.")
        if row["session_status"] != "active":
            raise MeetingNotFound()

    @staticmethod
    def _audit(
        caller: Caller, action: str, appointment: Appointment, meeting_id: str, request_id: str | None,
        *, outcome: str = "allowed", details: dict[str, Any] | None = None,
    ) -> AuditEntry:  # fmt: skip
        return AuditEntry(caller.user_id, action, appointment.id, appointment.patient_id, meeting_id, request_id,
                          outcome=outcome, details=details)  # fmt: skip


def _after_change(reactions: list[dict[str, Any]], before: str | None, after: str | None) -> list[dict[str, Any]]:
    """The reaction summary once the caller's reaction went from `before` to `after` (None: none)."""
    counts = {r["emoji"]: int(r["count"]) for r in reactions}
    order = [r["emoji"] for r in reactions]
    if before is not None:
        counts[before] = counts.get(before, 1) - 1
    if after is not None:
        if after not in counts:
            order.append(after)
        counts[after] = counts.get(after, 0) + 1
    return [{"emoji": e, "count": counts[e], "mine": e == after} for e in order if counts.get(e, 0) > 0]
