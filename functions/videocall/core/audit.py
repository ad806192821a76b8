"""The audit trail: who did what to which patient's call, allowed, denied or failed. Append-only.

Every context writes its audit row in the same statement as the change it records (`AUDIT_CTE`, a
data-modifying CTE over a CTE named `s` that yields the session id, or NULL), so a change is never
recorded without its audit row or the reverse.

`details` holds identifiers, codes and counts only: never names, tokens, transcript or chat text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from videocall.core.db import Database

AUDIT_CTE = """
    audited AS (
        INSERT INTO audit_events
            (actor_user_id, action, outcome, appointment_id, patient_id, session_id, meeting_id, request_id, details)
        SELECT %(actor)s::uuid, %(action)s, %(outcome)s, %(appointment_id)s, %(patient_id)s::uuid,
               s.id, %(meeting_id)s, %(request_id)s, %(details)s
          FROM s
    )"""


@dataclass(frozen=True)
class AuditEntry:
    actor: str | None
    action: str
    appointment_id: str | None
    patient_id: str | None
    meeting_id: str | None
    request_id: str | None
    outcome: str = "allowed"
    details: dict[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "appointment_id": self.appointment_id,
            "patient_id": self.patient_id,
            "meeting_id": self.meeting_id,
            "request_id": self.request_id,
            "details": Jsonb(self.details or {}),
        }


def write_audit(db: Database, entry: AuditEntry, session_id: str | None = None) -> None:
    """The audit row alone (reads, denials): one round trip."""
    db.execute(
        f"""WITH s AS (SELECT %(session_id)s::uuid AS id), {AUDIT_CTE} SELECT 1""",
        {"session_id": session_id, **entry.params()},
    )
