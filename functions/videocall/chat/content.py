"""Chat as appointment content (videocall.core.records): the messages (with their reactions and the
conversation's read receipts) and the attachments (rows and every object version), for retention,
the right of access (export) and erasure. One setting (RETENTION_DAYS_CHAT) for both kinds.

Export carries the messages themselves (they live in the database) and, per attachment, a download
link that expires, only for objects GuardDuty passed (a link handed out is an audit event, like any
other); erasure and retention delete every object version before the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from videocall.chat.repository import ChatRepository
from videocall.chat.storage import AttachmentStore, appointment_folder, object_folder
from videocall.core.audit import AuditEntry
from videocall.core.observability import MetricUnit, metrics


class ChatMessagesContent:
    kind = "messages"

    def __init__(self, chat: ChatRepository) -> None:
        self._chat = chat

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        return [{"appointmentId": r["appointment_id"], **r["message"]} for r in self._chat.messages_of(appointment_ids)]

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        deleted = self._chat.delete_messages(
            appointment_ids=appointment_ids, older_than_days=None,
            audit=AuditEntry(actor, "privacy.erase_messages", _one(appointment_ids), None, None, request_id,
                             details={"appointments": len(appointment_ids)}),
        )  # fmt: skip
        metrics.add_metric(name="ChatMessagesDeleted", unit=MetricUnit.Count, value=deleted)
        return deleted

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        counts = [r for r in self._chat.expired_message_counts(older_than_days) if r["appointment_id"] not in held]
        if not counts:
            return 0
        ids = [r["appointment_id"] for r in counts]
        deleted = self._chat.delete_messages(
            appointment_ids=ids, older_than_days=older_than_days,
            audit=AuditEntry(None, "retention.delete_messages", _one(ids), None, None, request_id,
                             details={"appointments": len(ids)}),
        )  # fmt: skip
        metrics.add_metric(name="ChatMessagesDeleted", unit=MetricUnit.Count, value=deleted)
        return deleted


class ChatAttachmentsContent:
    kind = "attachments"

    def __init__(self, chat: ChatRepository, store: Callable[[], AttachmentStore], scan_refusal: Callable) -> None:
        self._chat = chat
        self._store = store
        self._scan_refusal = scan_refusal  # ChatService.scan_refusal: the same rule as the API's links

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        rows = self._chat.attachments_of(appointment_ids)
        if not rows:
            return out
        store = self._store()
        for row in rows:
            item: dict[str, Any] = {
                "attachmentId": row["attachment_id"], "appointmentId": row["appointment_id"],
                "meetingId": row["meeting_id"], "messageId": row["message_id"], "fileName": row["file_name"],
                "contentType": row["content_type"], "sizeBytes": row["size_bytes"], "uploadedBy": row["uploaded_by"],
                "uploadedAt": row["created_at"].isoformat(), "downloadUrl": None, "state": "available",
            }  # fmt: skip
            try:
                scanned = store.scan_status(row["s3_key"])
                refusal = self._scan_refusal(scanned.verdict)
            except LookupError:
                item["state"] = "not_uploaded"
            else:
                if refusal is not None:
                    item["state"] = refusal.code
                else:
                    item["downloadUrl"] = store.download_link(
                        row["s3_key"], row["file_name"], version_id=scanned.version_id, content_type=row["content_type"]
                    )
                    self._chat.audit(AuditEntry(actor, "chat.attachment_link", row["appointment_id"], None,
                                                row["meeting_id"], request_id,
                                                details={"attachment_id": row["attachment_id"], "via": "export"}),
                                     None)  # fmt: skip
            out.append(item)
        return out

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        rows = self._chat.attachments_of(appointment_ids)
        if not rows:
            return 0
        store = self._store()
        versions = sum(store.delete_all_versions(appointment_folder(a)) for a in sorted({r["appointment_id"]
                                                                                        for r in rows}))  # fmt: skip
        return self._delete([r["attachment_id"] for r in rows], versions, appointment_ids, actor,
                            "privacy.erase_attachments", request_id)  # fmt: skip

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        rows = [r for r in self._chat.expired_attachments(older_than_days) if r["appointment_id"] not in held]
        if not rows:
            return 0
        store = self._store()
        versions = sum(store.delete_all_versions(object_folder(r["appointment_id"], r["attachment_id"]))
                       for r in rows)  # fmt: skip
        return self._delete([r["attachment_id"] for r in rows], versions,
                            sorted({r["appointment_id"] for r in rows}), None, "retention.delete_attachments",
                            request_id)  # fmt: skip

    def _delete(
        self, ids: list[str], versions: int, appointment_ids: list[str], actor: str | None, action: str,
        request_id: str | None,
    ) -> int:  # fmt: skip
        deleted = self._chat.delete_attachments(
            attachment_ids=ids,
            audit=AuditEntry(actor, action, _one(appointment_ids), None, None, request_id,
                             details={"attachments": len(ids), "object_versions": versions}),
        )  # fmt: skip
        metrics.add_metric(name="ChatAttachmentsDeleted", unit=MetricUnit.Count, value=deleted)
        metrics.add_metric(name="ObjectVersionsDeleted", unit=MetricUnit.Count, value=versions)
        return deleted


def _one(appointment_ids: list[str]) -> str | None:
    return appointment_ids[0] if len(appointment_ids) == 1 else None
