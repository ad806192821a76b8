"""Transcripts as appointment content: retention, export and erasure (videocall.core.records)."""

from __future__ import annotations

from typing import Any

from videocall.core.audit import AuditEntry
from videocall.core.observability import MetricUnit, metrics
from videocall.transcripts.repository import TranscriptRepository


class TranscriptsContent:
    kind = "transcripts"

    def __init__(self, transcripts: TranscriptRepository) -> None:
        self._transcripts = transcripts

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        """The transcript itself: it lives in the database, so the export carries it (no link to issue)."""
        out = []
        for row in self._transcripts.of_appointments(appointment_ids):
            record = self._transcripts.clinical_record(row["transcript_session_id"]) or {}
            out.append({
                "appointmentId": row["appointment_id"], "meetingId": row["meeting_id"],
                "builtAt": row["built_at"].isoformat(), "language": row["transcript_language"],
                "partialCoverage": row["partial_coverage"], "segments": row["segments"],
                "entities": record.get("entities", []), "icd10Candidates": record.get("icd10", []),
                "summary": {"state": row["summary_state"], "text": row["summary_text"], "machineGenerated": True}
                if row["summary_text"] else None,
            })  # fmt: skip
        return out

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        return self._delete(self._transcripts.sessions_of(appointment_ids), actor, "privacy.erase_transcripts",
                            request_id)  # fmt: skip

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        rows = [r for r in self._transcripts.older_than(older_than_days) if r["appointment_id"] not in held]
        return self._delete(rows, None, "retention.delete_transcripts", request_id)

    def _delete(self, rows: list[Any], actor: str | None, action: str, request_id: str | None) -> int:
        if not rows:
            return 0
        deleted = self._transcripts.delete(
            session_ids=[r["session_id"] for r in rows],
            audit=AuditEntry(actor, action, rows[0]["appointment_id"] if len({r["appointment_id"] for r in rows}) == 1
                             else None, None, None, request_id, details={"transcripts": len(rows)}),
        )  # fmt: skip
        metrics.add_metric(name="TranscriptsDeleted", unit=MetricUnit.Count, value=deleted)
        return deleted
