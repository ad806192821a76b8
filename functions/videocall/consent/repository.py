"""Consent persistence: owns `appointment_consents`. One round trip per method; a change carries
its audit row (consent.update: who, when, the new decisions) in the same statement."""

from __future__ import annotations

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.context import APPOINTMENT_JOINS, CALLER_AND_APPOINTMENT
from videocall.core.db import Database, Row

_CONSENT_COLUMNS = """c.recording, c.transcription, c.ai_processing, c.source,
    c.recorded_by::text AS recorded_by, c.updated_at"""


class ConsentRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def appointment_context(self, firebase_uid: str, appointment_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT}, NULL::text AS session_id, {_CONSENT_COLUMNS}
                  {APPOINTMENT_JOINS}
                  LEFT JOIN appointment_consents c ON c.appointment_id = a.id
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "appointment_id": appointment_id},
        )

    def record(
        self, *, appointment_id: str, recording: str, transcription: str, ai_processing: str, source: str,
        recorded_by: str, audit: AuditEntry,
    ) -> Row:  # fmt: skip
        row = self._db.fetch_one(
            f"""WITH c AS (
                    INSERT INTO appointment_consents AS c
                        (appointment_id, recording, transcription, ai_processing, source, recorded_by)
                    VALUES (%(appointment_id)s, %(recording)s, %(transcription)s, %(ai)s, %(source)s,
                            %(recorded_by)s::uuid)
                    ON CONFLICT (appointment_id) DO UPDATE
                       SET recording = EXCLUDED.recording, transcription = EXCLUDED.transcription,
                           ai_processing = EXCLUDED.ai_processing, source = EXCLUDED.source,
                           recorded_by = EXCLUDED.recorded_by, updated_at = now()
                    RETURNING *
                ), s AS (SELECT NULL::uuid AS id), {AUDIT_CTE}
                SELECT {_CONSENT_COLUMNS} FROM c""",
            {
                "appointment_id": appointment_id, "recording": recording, "transcription": transcription,
                "ai": ai_processing, "source": source, "recorded_by": recorded_by, **audit.params(),
            },
        )  # fmt: skip
        assert row is not None
        return row

    def of_appointments(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            f"SELECT appointment_id, {_CONSENT_COLUMNS} FROM appointment_consents c WHERE appointment_id = ANY(%s)",
            (appointment_ids,),
        )

    def erase(self, appointment_ids: list[str]) -> int:
        """Erasure resets consent: nothing is recorded or transcribed again without asking anew (the
        audit trail keeps every decision that was made)."""
        return self._db.execute(
            "DELETE FROM appointment_consents WHERE appointment_id = ANY(%(ids)s)", {"ids": appointment_ids}
        )
