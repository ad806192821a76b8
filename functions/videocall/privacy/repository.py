"""Privacy persistence: owns `legal_holds` and the erasure marks (`users.erased_at`,
`appointments.erased_at`); reads the audit trail for the data-protection officer."""

from __future__ import annotations

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.db import Database, Row


class PrivacyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def caller(self, firebase_uid: str) -> Row | None:
        return self._db.read_one(
            "SELECT id::text AS caller_id, role AS caller_role FROM users WHERE firebase_uid = %(uid)s",
            {"uid": firebase_uid},
        )

    def patient(self, patient_id: str) -> Row | None:
        return self._db.fetch_one(
            """SELECT id::text AS id, role, display_name, created_at, erased_at FROM users
                WHERE id = %(id)s::uuid AND role = 'patient'""",
            {"id": patient_id},
        )

    def appointments(self, *, patient_id: str | None = None, appointment_id: str | None = None) -> list[Row]:
        """The appointments concerned, each with its legal hold if any."""
        return self._db.fetch_all(
            """SELECT a.id, a.provider_id::text AS provider_id, a.patient_id::text AS patient_id, a.status,
                      a.scheduled_at, a.created_at, a.erased_at, h.reference AS hold_reference,
                      EXISTS (SELECT 1 FROM video_call_sessions s WHERE s.appointment_id = a.id
                                 AND s.status IN ('creating', 'active')) AS meeting_live
                 FROM appointments a LEFT JOIN legal_holds h ON h.appointment_id = a.id
                WHERE a.patient_id = %(patient_id)s::uuid OR a.id = %(appointment_id)s
                ORDER BY a.scheduled_at""",
            {"patient_id": patient_id, "appointment_id": appointment_id},
        )

    def sessions(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            """SELECT s.appointment_id, s.meeting_id, s.status, s.generation, s.created_at, s.ended_at,
                      s.recording_enabled, s.recording_state, s.transcription_enabled, s.transcription_language,
                      s.created_by::text AS created_by, s.ended_by::text AS ended_by,
                      (SELECT coalesce(json_agg(json_build_object('userId', m.user_id, 'addedAt', m.created_at)
                                                ORDER BY m.created_at), '[]'::json)
                         FROM meeting_attendees m WHERE m.session_id = s.id) AS attendees
                 FROM video_call_sessions s WHERE s.appointment_id = ANY(%(ids)s) ORDER BY s.created_at""",
            {"ids": appointment_ids},
        )

    def audit_trail(self, *, patient_id: str, before_id: int | None, limit: int) -> list[Row]:
        return self._db.fetch_all(
            """SELECT e.id, e.occurred_at, e.actor_user_id::text AS actor_user_id, e.action, e.outcome,
                      e.appointment_id, e.meeting_id, e.request_id, e.details
                 FROM audit_events e
                WHERE (e.patient_id = %(patient_id)s::uuid
                       OR e.appointment_id IN (SELECT id FROM appointments WHERE patient_id = %(patient_id)s::uuid))
                  AND (%(before)s::bigint IS NULL OR e.id < %(before)s::bigint)
                ORDER BY e.id DESC LIMIT %(limit)s""",
            {"patient_id": patient_id, "before": before_id, "limit": limit},
        )

    def held_appointments(self) -> frozenset[str]:
        return frozenset(r["appointment_id"] for r in self._db.fetch_all("SELECT appointment_id FROM legal_holds"))

    def begin_erasure(self, appointment_ids: list[str]) -> list[str]:
        """Mark the appointments as being erased, in the same statement that checks they are not held,
        so a hold placed from now on is refused (place_hold) and an erasure never races a hold."""
        rows = self._db.fetch_all(
            """UPDATE appointments a SET erased_at = coalesce(a.erased_at, now())
                WHERE a.id = ANY(%(ids)s)
                  AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.appointment_id = a.id)
            RETURNING a.id""",
            {"ids": appointment_ids},
        )
        return [r["id"] for r in rows]

    def appointment_state(self, appointment_id: str) -> Row | None:
        return self._db.fetch_one("SELECT id, erased_at FROM appointments WHERE id = %(id)s", {"id": appointment_id})

    def place_hold(self, *, appointment_id: str, reference: str, audit: AuditEntry) -> Row | None:
        return self._db.fetch_one(
            f"""WITH h AS (
                    INSERT INTO legal_holds (appointment_id, placed_by, reference)
                    SELECT %(appointment_id)s, %(actor)s::uuid, %(reference)s
                     WHERE EXISTS (SELECT 1 FROM appointments WHERE id = %(appointment_id)s AND erased_at IS NULL)
                    ON CONFLICT (appointment_id) DO UPDATE SET reference = EXCLUDED.reference
                    RETURNING *
                ), s AS (SELECT NULL::uuid AS id FROM h), {AUDIT_CTE}
                SELECT appointment_id, placed_by::text AS placed_by, placed_at, reference FROM h""",
            {"appointment_id": appointment_id, "reference": reference, **audit.params()},
        )

    def lift_hold(self, *, appointment_id: str, audit: AuditEntry) -> bool:
        row = self._db.fetch_one(
            f"""WITH h AS (DELETE FROM legal_holds WHERE appointment_id = %(appointment_id)s RETURNING 1),
                s AS (SELECT NULL::uuid AS id FROM h), {AUDIT_CTE}
                SELECT count(*) AS n FROM h""",
            {"appointment_id": appointment_id, **audit.params()},
        )
        return bool(row and row["n"])

    def pseudonymize(self, *, appointment_ids: list[str], patient_id: str | None, audit: AuditEntry) -> None:
        """Keep the rows the audit trail refers to, without what identifies the person: the patient's
        name and Firebase uid go (the uid link to the app's account is cut); appointments are marked."""
        self._db.execute(
            f"""WITH appts AS (
                    UPDATE appointments SET erased_at = coalesce(erased_at, now())
                     WHERE id = ANY(%(ids)s) RETURNING id
                ), person AS (
                    UPDATE users SET display_name = 'erased', firebase_uid = 'erased:' || id::text,
                                     erased_at = coalesce(erased_at, now())
                     WHERE id = %(patient_id)s::uuid RETURNING id
                ), s AS (SELECT NULL::uuid AS id), {AUDIT_CTE}
                SELECT 1""",
            {"ids": appointment_ids, "patient_id": patient_id, **audit.params()},
        )

    def audit(self, entry: AuditEntry) -> None:
        self._db.execute(f"WITH s AS (SELECT NULL::uuid AS id), {AUDIT_CTE} SELECT 1", entry.params())

    def prune_seen_events(self, days: int = 7) -> int:
        return self._db.execute(
            "DELETE FROM chime_events_seen WHERE received_at < now() - make_interval(days => %(days)s)",
            {"days": days},
        )
