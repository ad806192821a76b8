"""Recordings as appointment content: retention, export and erasure (videocall.core.records)."""

from __future__ import annotations

from typing import Any

from videocall.core.audit import AuditEntry
from videocall.core.errors import RecordingInProgress
from videocall.core.observability import MetricUnit, metrics
from videocall.core.storage import ObjectStore
from videocall.recordings.repository import RUNNING, RecordingRepository
from videocall.recordings.service import artifact_file_name


class RecordingsContent:
    kind = "recordings"

    def __init__(self, recordings: RecordingRepository, store: ObjectStore) -> None:
        self._recordings = recordings
        self._store = store

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        out = []
        issued: list[AuditEntry] = []
        for row in self._recordings.of_appointments(appointment_ids):
            if not row["keep_media"]:
                continue  # a capture only for the transcript: never offered (the transcript is exported)
            item = {
                "recordingId": row["recording_id"], "appointmentId": row["appointment_id"],
                "meetingId": row["meeting_id"], "sequence": row["sequence"], "state": row["state"],
                "startedAt": row["started_at"].isoformat(), "startedBy": row["started_by"],
                "stoppedAt": row["stopped_at"].isoformat() if row["stopped_at"] else None,
                "stoppedBy": row["stopped_by"], "stopReason": row["stop_reason"],
                "artifacts": [],
            }  # fmt: skip
            for artifact in row["artifacts"]:
                name = artifact_file_name(row["meeting_id"], row["sequence"], artifact["kind"], artifact["key"])
                item["artifacts"].append({
                    "kind": artifact["kind"], "sizeBytes": artifact["sizeBytes"],
                    "downloadUrl": self._store.download_link(artifact["key"], name),
                })  # fmt: skip
                issued.append(AuditEntry(actor, "recording.download_link", row["appointment_id"], None,
                                         row["meeting_id"], request_id,
                                         details={"recording_id": row["recording_id"], "kind": artifact["kind"],
                                                  "via": "export"}))  # fmt: skip
            out.append(item)
        self._recordings.audit_many(issued, None)
        return out

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        rows = [r for r in self._recordings.of_appointments(appointment_ids) if r["state"] != "deleted"]
        if any(r["state"] in (*RUNNING, "processing") for r in rows):
            # A running capture, or a concatenation still to write, would put content back under the
            # prefix being emptied.
            raise RecordingInProgress()
        return self._delete(rows, actor=actor, action="privacy.erase_recordings", request_id=request_id)

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        rows = [r for r in self._recordings.older_than(older_than_days) if r["appointment_id"] not in held]
        return self._delete(rows, actor=None, action="retention.delete_recordings", request_id=request_id)

    def _delete(self, rows: list[Any], *, actor: str | None, action: str, request_id: str | None) -> int:
        if not rows:
            return 0
        versions = 0
        for row in rows:
            # Every version and delete marker under the recording's folder: capture chunks and files.
            versions += self._store.delete_all_versions(f"{row['s3_prefix']}/")
        by_appointment: dict[str, list[str]] = {}
        for row in rows:
            by_appointment.setdefault(row["appointment_id"], []).append(row["recording_id"])
        deleted = 0
        for appointment_id, ids in by_appointment.items():
            deleted += self._recordings.mark_deleted(
                recording_ids=ids,
                audit=AuditEntry(actor, action, appointment_id, None, None, request_id,
                                 details={"recordings": len(ids)}),
            )  # fmt: skip
        metrics.add_metric(name="RecordingsDeleted", unit=MetricUnit.Count, value=deleted)
        metrics.add_metric(name="ObjectVersionsDeleted", unit=MetricUnit.Count, value=versions)
        return deleted
