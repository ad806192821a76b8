"""Controls persistence: owns `appointment_call_settings`, `lobby_entries`, `participant_controls` and
`session_controls`. One round trip per method; every change carries its audit row in the same statement.

Reads of other contexts' tables (read-only): meeting_attendees (who is in the meeting, their
attendee), attendee_presence (connected or not, network type), users (role).
"""

from __future__ import annotations

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.context import CALLER_AND_APPOINTMENT, MEETING_JOINS
from videocall.core.db import Database, Row

_SESSION = """s.id::text AS session_id, s.status AS session_status, s.meeting_id,
    sc.join_audio AS session_join_audio, sc.exempt_user_id::text AS session_exempt_user_id"""

# One row per person of the meeting: the appointment's provider and patient, everyone with an attendee
# in this meeting, everyone in the appointment's lobby.
_PEOPLE = """
    SELECT p.user_id::text AS user_id, pu.role, ma2.attendee_id, ma2.added_by IS NOT NULL AS was_added,
           le2.state AS lobby_state, le2.waiting_since, pc2.audio, pc2.video, pc2.content, pc2.hand_raised_at,
           pr.connected, pr.seen, pr.network_type
      FROM (SELECT a.provider_id AS user_id UNION SELECT a.patient_id
            UNION SELECT m.user_id FROM meeting_attendees m WHERE m.session_id = s.id
            UNION SELECT l.user_id FROM lobby_entries l WHERE l.appointment_id = a.id) p
      JOIN users pu ON pu.id = p.user_id
      LEFT JOIN meeting_attendees ma2 ON ma2.session_id = s.id AND ma2.user_id = p.user_id
      LEFT JOIN lobby_entries le2 ON le2.appointment_id = a.id AND le2.user_id = p.user_id
      LEFT JOIN participant_controls pc2 ON pc2.session_id = s.id AND pc2.user_id = p.user_id
      LEFT JOIN LATERAL (
          SELECT bool_or(ap.state = 'joined') AS connected, count(*) > 0 AS seen,
                 (array_agg(ap.network_type ORDER BY ap.last_event_ms DESC))[1] AS network_type
            FROM attendee_presence ap
           WHERE ap.session_id = s.id AND ap.user_id = p.user_id AND NOT ap.is_pipeline
      ) pr ON true"""


class ControlsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- reads: the caller's context, and what the action is about --------------------------------
    def target_context(self, firebase_uid: str, meeting_id: str, target_user_id: str | None) -> Row | None:
        """The caller, the meeting, and the person acted on (their attendee, admission, capabilities)."""
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT}, {_SESSION},
                       t.id::text AS target_id, t.role AS target_role, tma.attendee_id AS target_attendee_id,
                       tle.state AS target_lobby_state, tpc.audio AS target_audio, tpc.video AS target_video,
                       tpc.content AS target_content, tpc.hand_raised_at AS target_hand_raised_at
                  {MEETING_JOINS}
                  LEFT JOIN session_controls sc ON sc.session_id = s.id
                  LEFT JOIN users t ON t.id = %(target)s::uuid
                  LEFT JOIN meeting_attendees tma ON tma.session_id = s.id AND tma.user_id = t.id
                  LEFT JOIN lobby_entries tle ON tle.appointment_id = a.id AND tle.user_id = t.id
                  LEFT JOIN participant_controls tpc ON tpc.session_id = s.id AND tpc.user_id = t.id
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "target": target_user_id},
        )

    def people_context(self, firebase_uid: str, meeting_id: str) -> Row | None:
        """The caller, the meeting, and everyone in it (see _PEOPLE), in one round trip."""
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT}, {_SESSION},
                       (SELECT coalesce(json_agg(row_to_json(x) ORDER BY x.user_id), '[]'::json)
                          FROM ({_PEOPLE}) x) AS people
                  {MEETING_JOINS}
                  LEFT JOIN session_controls sc ON sc.session_id = s.id
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id},
        )

    # --- changes ----------------------------------------------------------------------------------
    def set_capabilities(
        self, *, session_id: str, user_id: str, capabilities: dict[str, str], audit: AuditEntry
    ) -> None:
        self._db.execute(
            f"""WITH s AS (SELECT %(session_id)s::uuid AS id), saved AS (
                    INSERT INTO participant_controls AS pc (session_id, user_id, audio, video, content)
                    VALUES (%(session_id)s, %(user_id)s, %(audio)s, %(video)s, %(content)s)
                    ON CONFLICT (session_id, user_id) DO UPDATE
                       SET audio = EXCLUDED.audio, video = EXCLUDED.video, content = EXCLUDED.content,
                           updated_at = now()
                ), {AUDIT_CTE}
                SELECT 1""",
            {"session_id": session_id, "user_id": user_id, **capabilities, **audit.params()},
        )

    def mute_all(self, *, session_id: str, exempt_user_id: str, user_ids: list[str], audit: AuditEntry) -> None:
        """Everyone listed is muted; late joiners (all but the exempt) arrive muted."""
        self._db.execute(
            f"""WITH s AS (SELECT %(session_id)s::uuid AS id), muted AS (
                    INSERT INTO participant_controls AS pc (session_id, user_id, audio)
                    SELECT %(session_id)s, x, 'Receive' FROM unnest(%(user_ids)s::uuid[]) x
                    ON CONFLICT (session_id, user_id) DO UPDATE SET audio = 'Receive', updated_at = now()
                ), late AS (
                    INSERT INTO session_controls AS sc (session_id, join_audio, exempt_user_id, changed_by)
                    VALUES (%(session_id)s, 'Receive', %(exempt)s, %(actor)s)
                    ON CONFLICT (session_id) DO UPDATE
                       SET join_audio = 'Receive', exempt_user_id = EXCLUDED.exempt_user_id,
                           changed_by = EXCLUDED.changed_by, updated_at = now()
                ), {AUDIT_CTE}
                SELECT 1""",
            {"session_id": session_id, "user_ids": user_ids, "exempt": exempt_user_id, **audit.params()},
        )

    def set_admission(
        self, *, appointment_id: str, session_id: str | None, user_id: str, state: str, decided_by: str | None,
        audit: AuditEntry,
    ) -> str | None:  # fmt: skip
        """admitted / denied / removed; the previous state (None when the person had no entry)."""
        row = self._db.fetch_one(
            f"""WITH s AS (SELECT %(session_id)s::uuid AS id),
                before AS (SELECT state FROM lobby_entries
                            WHERE appointment_id = %(appointment_id)s AND user_id = %(user_id)s),
                saved AS (
                    INSERT INTO lobby_entries AS le (appointment_id, user_id, state, decided_by, decided_at)
                    VALUES (%(appointment_id)s, %(user_id)s, %(state)s, %(decided_by)s, now())
                    ON CONFLICT (appointment_id, user_id) DO UPDATE
                       SET state = EXCLUDED.state, decided_by = EXCLUDED.decided_by, decided_at = now(),
                           updated_at = now()
                ), lowered AS (
                    UPDATE participant_controls SET hand_raised_at = NULL, updated_at = now()
                     WHERE %(state)s = 'removed' AND session_id = %(session_id)s AND user_id = %(user_id)s
                ), {AUDIT_CTE}
                SELECT (SELECT state FROM before) AS previous""",
            {"appointment_id": appointment_id, "session_id": session_id, "user_id": user_id, "state": state,
             "decided_by": decided_by, **audit.params()},
        )  # fmt: skip
        return row["previous"] if row else None

    def enter_lobby(self, *, appointment_id: str, session_id: str | None, user_id: str, audit: AuditEntry) -> bool:
        """The person waits; True when they were not waiting already (the provider is told once)."""
        row = self._db.fetch_one(
            f"""WITH saved AS (
                    INSERT INTO lobby_entries AS le (appointment_id, user_id, state, waiting_since)
                    VALUES (%(appointment_id)s, %(user_id)s, 'waiting', now())
                    -- a poll racing a decision never undoes it (the decision stays, the poll stays waiting once)
                    ON CONFLICT (appointment_id, user_id) DO NOTHING
                    RETURNING 1
                ),
                -- audited once, when they start waiting (not on every poll)
                s AS (SELECT %(session_id)s::uuid AS id FROM saved), {AUDIT_CTE}
                SELECT EXISTS (SELECT 1 FROM saved) AS newly_waiting""",
            {"appointment_id": appointment_id, "session_id": session_id, "user_id": user_id, **audit.params()},
        )
        return bool(row and row["newly_waiting"])

    def set_waiting_room(self, *, appointment_id: str, waiting_room: bool, set_by: str, audit: AuditEntry) -> None:
        self._db.execute(
            f"""WITH s AS (SELECT NULL::uuid AS id), saved AS (
                    INSERT INTO appointment_call_settings AS cs (appointment_id, waiting_room, set_by)
                    VALUES (%(appointment_id)s, %(waiting_room)s, %(set_by)s)
                    ON CONFLICT (appointment_id) DO UPDATE
                       SET waiting_room = EXCLUDED.waiting_room, set_by = EXCLUDED.set_by, updated_at = now()
                ), {AUDIT_CTE}
                SELECT 1""",
            {"appointment_id": appointment_id, "waiting_room": waiting_room, "set_by": set_by, **audit.params()},
        )

    def set_hand(self, *, session_id: str, user_id: str, raised: bool, audit: AuditEntry) -> Row:
        row = self._db.fetch_one(
            f"""WITH s AS (SELECT %(session_id)s::uuid AS id), saved AS (
                    INSERT INTO participant_controls AS pc (session_id, user_id, hand_raised_at)
                    VALUES (%(session_id)s, %(user_id)s, CASE WHEN %(raised)s THEN now() END)
                    ON CONFLICT (session_id, user_id) DO UPDATE
                       SET hand_raised_at = CASE WHEN %(raised)s THEN coalesce(pc.hand_raised_at, now()) END,
                           updated_at = now()
                    RETURNING hand_raised_at
                ), {AUDIT_CTE}
                SELECT hand_raised_at FROM saved""",
            {"session_id": session_id, "user_id": user_id, "raised": raised, **audit.params()},
        )
        assert row is not None
        return row

    def audit(self, entry: AuditEntry, session_id: str | None) -> None:
        self._db.execute(
            f"WITH s AS (SELECT %(session_id)s::uuid AS id), {AUDIT_CTE} SELECT 1",
            {"session_id": session_id, **entry.params()},
        )
