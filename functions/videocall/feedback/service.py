"""The feedback rules: any participant of a meeting answers the survey, during or after the call,
once (a second answer replaces the first). The rating and issues become metrics (EMF) for the
dashboard; the comment is patient data: stored, exported, erased, never logged or put in a metric.

Budget: DB context, DB save+audit (2 DB).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import single_metric

from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate
from videocall.core.observability import NAMESPACE, SERVICE, MetricUnit, metrics
from videocall.feedback.repository import FeedbackRepository


class FeedbackService:
    def __init__(self, feedback: FeedbackRepository, gate: AccessGate) -> None:
        self._feedback = feedback
        self._gate = gate

    def give(
        self, firebase_uid: str, meeting_id: str, *, rating: int, issues: list[str], comment: str | None,
        request_id: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        row = self._feedback.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.participant(row, meeting_id=meeting_id, action="feedback.give",
                                                     request_id=request_id)  # fmt: skip
        assert row is not None
        issues = list(dict.fromkeys(issues))
        comment = comment.strip() or None if comment is not None else None
        saved = self._feedback.save(
            session_id=row["session_id"], user_id=caller.user_id, rating=rating, issues=issues, comment=comment,
            audit=AuditEntry(caller.user_id, "feedback.give", appointment.id, appointment.patient_id, meeting_id,
                             request_id, details={"rating": rating, "issues": issues}),
        )  # fmt: skip
        if not saved["replaced"]:
            _count(rating, issues, caller.role)
        return {
            "meetingId": meeting_id, "rating": rating, "issues": issues, "hasComment": comment is not None,
            "replaced": saved["replaced"], "updatedAt": saved["updated_at"].isoformat(),
        }  # fmt: skip


def _count(rating: int, issues: list[str], role: str) -> None:
    """CallRating (average it on the dashboard) and one CallIssues count per issue, by issue."""
    metrics.add_metric(name="CallRating", unit=MetricUnit.Count, value=rating)
    metrics.add_metric(name="CallFeedback", unit=MetricUnit.Count, value=1)
    for issue in issues:
        with single_metric(
            name="CallIssues", unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
            default_dimensions={"service": SERVICE},
        ) as metric:  # fmt: skip
            metric.add_dimension(name="issue", value=issue)
