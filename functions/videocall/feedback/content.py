"""Survey answers as appointment content: retention, export and erasure (videocall.core.records).
The comment is free text a patient wrote; the privacy service audits each erasure with its counts."""

from __future__ import annotations

from typing import Any

from videocall.feedback.repository import FeedbackRepository


class FeedbackContent:
    kind = "feedback"

    def __init__(self, feedback: FeedbackRepository) -> None:
        self._feedback = feedback

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        return [
            {
                "appointmentId": r["appointment_id"], "meetingId": r["meeting_id"], "userId": r["user_id"],
                "rating": r["rating"], "issues": list(r["issues"]), "comment": r["comment"],
                "updatedAt": r["updated_at"].isoformat(),
            }
            for r in self._feedback.of_appointments(appointment_ids)
        ]  # fmt: skip

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        return self._feedback.delete_of_appointments(appointment_ids)

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        return self._feedback.delete_older_than(days=older_than_days, held=sorted(held))
