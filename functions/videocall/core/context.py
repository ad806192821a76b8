"""The one access path every meeting-level action takes: who is calling, what the meeting and its
appointment are, and the caller's place in it, read in ONE round trip; then a rule of
videocall.core.access decides, and a denial is written to the audit trail before it is answered.

Contexts embed `MEETING_CONTEXT` in their own first query (adding their own columns and joins), so
an action never pays a separate round trip for authorization.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from videocall.core.access import Appointment, Caller, Membership, authorize_clinical_control, authorize_join
from videocall.core.audit import AuditEntry, write_audit
from videocall.core.db import Database, Row
from videocall.core.errors import DomainError, UserNotRegistered
from videocall.core.observability import count_failure

CALLER_AND_APPOINTMENT = """
    u.id::text AS caller_id, u.role AS caller_role,
    a.id AS appointment_id, a.provider_id::text AS provider_id, a.patient_id::text AS patient_id,
    a.video_enabled, a.status AS appointment_status, a.erased_at IS NOT NULL AS appointment_erased,
    ma.attendee_id AS caller_attendee_id, ma.added_by IS NOT NULL AS caller_was_added,
    ma.added_by::text AS caller_added_by, cle.state AS caller_lobby_state"""

# The caller's admission to the appointment (controls context, read-only): removed or denied people
# are no longer participants until a clinician admits them again.
CALLER_ADMISSION_JOIN = """
      LEFT JOIN lobby_entries cle ON cle.appointment_id = a.id AND cle.user_id = u.id"""

# FROM clause for an action on one meeting: %(uid)s is the caller's Firebase uid, %(meeting_id)s the meeting.
MEETING_JOINS = (
    """
      FROM users u
      LEFT JOIN video_call_sessions s ON s.meeting_id = %(meeting_id)s
      LEFT JOIN appointments a ON a.id = s.appointment_id
      LEFT JOIN meeting_attendees ma ON ma.session_id = s.id AND ma.user_id = u.id"""
    + CALLER_ADMISSION_JOIN
)

# FROM clause for an action on one appointment (no meeting): %(uid)s and %(appointment_id)s.
APPOINTMENT_JOINS = (
    """
      FROM users u
      LEFT JOIN appointments a ON a.id = %(appointment_id)s
      LEFT JOIN LATERAL (SELECT NULL::text AS attendee_id, NULL::uuid AS added_by) ma ON true"""
    + CALLER_ADMISSION_JOIN
)

T = TypeVar("T")


def caller_from(row: Row | None) -> Caller:
    if row is None:
        raise UserNotRegistered()
    return Caller(user_id=row["caller_id"], role=row["caller_role"])


def appointment_from(row: Row) -> Appointment | None:
    if row.get("appointment_id") is None:
        return None
    return Appointment(
        id=row["appointment_id"],
        provider_id=row["provider_id"],
        patient_id=row["patient_id"],
        video_enabled=row["video_enabled"],
        status=row["appointment_status"],
        erased=bool(row.get("appointment_erased")),
    )


def membership_from(row: Row) -> Membership:
    return Membership(added_by=row.get("caller_added_by"), lobby_state=row.get("caller_lobby_state"))


class AccessGate:
    """Applies a policy decision; a denial is audited (one round trip) before it is raised."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def clinical_control(
        self, row: Row | None, *, meeting_id: str, action: str, request_id: str | None
    ) -> tuple[Caller, Appointment]:
        """The caller of a clinical control (recording, transcription) on a meeting: the appointment's
        provider or staff the provider added; outsiders get the meeting's 404, patients a 403."""
        caller = caller_from(row)
        assert row is not None
        appointment: Appointment = self.check(
            lambda: authorize_clinical_control(caller, appointment_from(row), membership_from(row)),
            caller=caller, action=action, row=row, meeting_id=meeting_id, request_id=request_id,
        )  # fmt: skip
        return caller, appointment

    def participant(
        self, row: Row | None, *, meeting_id: str, action: str, request_id: str | None
    ) -> tuple[Caller, Appointment]:
        """The caller of a participant's action on a meeting: the appointment's provider or patient, or a
        user added to the meeting, and not removed or denied; anyone else gets the meeting's 404."""
        caller = caller_from(row)
        assert row is not None
        membership = membership_from(row)
        appointment: Appointment = self.check(
            lambda: authorize_join(caller, appointment_from(row), was_added=membership.was_added,
                                   lobby_state=membership.lobby_state),
            caller=caller, action=action, row=row, meeting_id=meeting_id, request_id=request_id,
        )  # fmt: skip
        return caller, appointment

    def check(
        self, decide: Callable[[], T], *, caller: Caller, action: str, row: Row,
        meeting_id: str | None = None, appointment_id: str | None = None, request_id: str | None = None,
    ) -> T:  # fmt: skip
        try:
            return decide()
        except DomainError as denial:
            known = appointment_from(row)
            write_audit(
                self._db,
                AuditEntry(
                    caller.user_id, action, appointment_id or (known.id if known else None),
                    known.patient_id if known else None, meeting_id, request_id, outcome="denied",
                    details={"reason": denial.code},
                ),
                session_id=row.get("session_id"),
            )  # fmt: skip
            count_failure(f"denied_{denial.code}")
            raise
