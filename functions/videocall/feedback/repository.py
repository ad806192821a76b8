"""Feedback persistence: owns `call_feedback`. One round trip per method; a change carries its audit
row (rating and issues; never the comment) in the same statement."""

from __future__ import annotations

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.context import CALLER_AND_APPOINTMENT, MEETING_JOINS
from videocall.core.db import Database, Row


class FeedbackRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def meeting_context(self, firebase_uid: str, meeting_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT}, s.id::text AS session_id, s.status AS session_status
                  {MEETING_JOINS}
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id},
        )

    def save(
        self, *, session_id: str, user_id: str, rating: int, issues: list[str], comment: str | None, audit: AuditEntry
    ) -> Row:
        row = self._db.fetch_one(
            f"""WITH s AS (SELECT %(session_id)s::uuid AS id), saved AS (
                    INSERT INTO call_feedback AS f (session_id, user_id, rating, issues, comment)
                    VALUES (%(session_id)s, %(user_id)s, %(rating)s, %(issues)s, %(comment)s)
                    ON CONFLICT (session_id, user_id) DO UPDATE
                       SET rating = EXCLUDED.rating, issues = EXCLUDED.issues, comment = EXCLUDED.comment,
                           updated_at = now()
                    RETURNING updated_at, created_at <> updated_at AS replaced
                ), {AUDIT_CTE}
                SELECT updated_at, replaced FROM saved""",
            {"session_id": session_id, "user_id": user_id, "rating": rating, "issues": issues, "comment": comment,
             **audit.params()},
        )  # fmt: skip
        assert row is not None
        return row

    # --- retention, export, erasure (videocall.feedback.content) ---------------------------------
    def of_appointments(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            """SELECT s.appointment_id, s.meeting_id, f.user_id::text AS user_id, f.rating, f.issues, f.comment,
                      f.updated_at
                 FROM call_feedback f JOIN video_call_sessions s ON s.id = f.session_id
                WHERE s.appointment_id = ANY(%(ids)s) ORDER BY f.updated_at""",
            {"ids": appointment_ids},
        )

    def delete_of_appointments(self, appointment_ids: list[str]) -> int:
        return self._db.execute(
            """DELETE FROM call_feedback f USING video_call_sessions s
                WHERE s.id = f.session_id AND s.appointment_id = ANY(%(ids)s)""",
            {"ids": appointment_ids},
        )

    def delete_older_than(self, *, days: int, held: list[str]) -> int:
        return self._db.execute(
            """DELETE FROM call_feedback f USING video_call_sessions s
                WHERE s.id = f.session_id AND f.updated_at < now() - make_interval(days => %(days)s)
                  AND NOT s.appointment_id = ANY(%(held)s)""",
            {"days": days, "held": held},
        )
