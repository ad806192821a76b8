"""Session persistence: every SQL statement the domain runs, one method per statement.

Each method is ONE round trip. State changes carry their audit event in the same statement
(a data-modifying CTE), so a change is never recorded without its audit row or the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from videocall.controls.admission import ADMISSION_COLUMNS, ADMISSION_JOINS
from videocall.core.audit import AUDIT_CTE as _AUDIT
from videocall.core.audit import AuditEntry, write_audit
from videocall.core.context import CALLER_ADMISSION_JOIN, MEETING_JOINS
from videocall.core.context import CALLER_AND_APPOINTMENT as _CALLER_AND_APPOINTMENT
from videocall.core.db import Database, Row

_SESSION_COLUMNS = """
    s.id::text AS session_id, s.status AS session_status, s.generation, s.client_request_token,
    s.meeting_id, s.external_meeting_id, s.meeting_arn, s.media_region, s.media_placement,
    s.meeting_features, s.recording_enabled, s.recording_state, s.transcription_state, s.transcription_enabled,
    s.transcription_language, s.pending_meeting,
    s.created_by::text AS created_by, s.ended_by::text AS ended_by, s.created_at, s.ended_at,
    s.updated_at < now() - make_interval(secs => %(stale_seconds)s) AS session_stale"""


_ATTENDEES_JSON = """,
    (SELECT coalesce(json_agg(json_build_object(
                'userId', m.user_id, 'attendeeId', m.attendee_id, 'addedAt', m.created_at)
                ORDER BY m.created_at), '[]'::json)
       FROM meeting_attendees m WHERE m.session_id = s.id) AS attendees"""

# Upserts the attendees of `s` (a CTE yielding the session's id) and the old attendee_tokens map.
_RECORD_ATTENDEES = """
    recorded AS (
        INSERT INTO meeting_attendees AS m (session_id, user_id, attendee_id, external_user_id, added_by)
        SELECT s.id, x.user_id, x.attendee_id, x.external_user_id, %(added_by)s::uuid
          FROM s, unnest(%(user_ids)s::uuid[], %(attendee_ids)s::text[], %(external_user_ids)s::text[])
                  AS x (user_id, attendee_id, external_user_id)
        ON CONFLICT (session_id, user_id) DO UPDATE
           SET attendee_id = EXCLUDED.attendee_id, external_user_id = EXCLUDED.external_user_id,
               updated_at = now()
        RETURNING m.user_id
    )"""


@dataclass(frozen=True)
class AttendeeRecord:
    user_id: str
    attendee_id: str
    external_user_id: str


def _attendee_params(records: list[AttendeeRecord], added_by: str | None) -> dict[str, Any]:
    return {
        "user_ids": [r.user_id for r in records],
        "attendee_ids": [r.attendee_id for r in records],
        "external_user_ids": [r.external_user_id for r in records],
        "added_by": added_by,
    }


class SessionRepository:
    def __init__(self, db: Database, *, stale_seconds: int = 60) -> None:
        self._db = db
        self._stale_seconds = stale_seconds

    # --- reads: the caller, what the action is about, and the caller's place in it ------------
    def appointment_context(self, firebase_uid: str, appointment_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {_CALLER_AND_APPOINTMENT}, {_SESSION_COLUMNS}, {ADMISSION_COLUMNS}
                  FROM users u
                  LEFT JOIN appointments a ON a.id = %(appointment_id)s
                  LEFT JOIN video_call_sessions s
                         ON s.appointment_id = a.id AND s.status IN ('creating', 'active')
                  LEFT JOIN meeting_attendees ma ON ma.session_id = s.id AND ma.user_id = u.id
                  {CALLER_ADMISSION_JOIN}
                  {ADMISSION_JOINS}
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "appointment_id": appointment_id, "stale_seconds": self._stale_seconds},
        )

    def meeting_context(self, firebase_uid: str, meeting_id: str, *, with_attendees: bool = False) -> Row | None:
        return self._db.read_one(
            f"""SELECT {_CALLER_AND_APPOINTMENT}, {_SESSION_COLUMNS}, {ADMISSION_COLUMNS}
                       {_ATTENDEES_JSON if with_attendees else ""}
                  {MEETING_JOINS}
                  {ADMISSION_JOINS}
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "stale_seconds": self._stale_seconds},
        )

    def users_for_batch(self, session_id: str, user_ids: list[str]) -> list[Row]:
        """The registered users among user_ids, with their attendee in this meeting if they have one, their
        admission (someone removed or denied is admitted through the lobby first) and what they may send."""
        return self._db.fetch_all(
            """SELECT u.id::text AS user_id, ma.attendee_id, ma.external_user_id, le.state AS lobby_state,
                      pc.audio AS caps_audio, pc.video AS caps_video, pc.content AS caps_content
                 FROM users u
                 LEFT JOIN meeting_attendees ma ON ma.session_id = %(session_id)s AND ma.user_id = u.id
                 LEFT JOIN video_call_sessions s ON s.id = %(session_id)s
                 LEFT JOIN lobby_entries le ON le.appointment_id = s.appointment_id AND le.user_id = u.id
                 LEFT JOIN participant_controls pc ON pc.session_id = s.id AND pc.user_id = u.id
                WHERE u.id = ANY(%(user_ids)s::uuid[])""",
            {"session_id": session_id, "user_ids": user_ids},
        )

    # --- creating a meeting ------------------------------------------------------------------------
    def claim_session(
        self,
        *,
        appointment_id: str,
        created_by: str,
        recording_enabled: bool,
        transcription_enabled: bool,
        transcription_language: str | None,
        retire_session_id: str | None,
        audit: AuditEntry,
    ) -> Row | None:
        """Insert the appointment's next session as 'creating', or return the live one another request holds.

        `retire_session_id` is a live session this request found dead (its Chime meeting is gone, or its
        create was abandoned): it is closed in the same statement, before the insert, so the unique
        "one live session per appointment" index lets the new one in. An abandoned create hands its
        ClientRequestToken on: the meeting its leader may have made before it died is the one the new
        session gets from Chime, never a second one beside it. The result has `claimed` = true
        when this request inserted the row (it leads the create) and false when it found another's.
        None means a concurrent claim committed after this statement's snapshot: call again.
        """
        return self._db.fetch_one(
            f"""WITH retired AS (
                    UPDATE video_call_sessions
                       SET status = CASE WHEN status = 'creating' THEN 'failed' ELSE 'ended' END,
                           error_message = CASE WHEN status = 'creating' THEN 'create abandoned' END,
                           error_occurred_at = CASE WHEN status = 'creating' THEN now() END,
                           ended_at = CASE WHEN status = 'active' THEN now() END,
                           pending_meeting = NULL, updated_at = now()
                     WHERE id = %(retire)s::uuid AND status IN ('creating', 'active')
                     RETURNING id, CASE WHEN error_message = 'create abandoned' THEN client_request_token END
                               AS abandoned_token
                ), s AS (
                    INSERT INTO video_call_sessions
                        (appointment_id, generation, client_request_token, external_meeting_id, status,
                         recording_enabled, transcription_enabled, transcription_language, created_by)
                    SELECT %(appointment_id)s, g.next,
                           coalesce((SELECT abandoned_token FROM retired), %(appointment_id)s || '-g' || g.next),
                           %(appointment_id)s,
                           'creating', %(recording)s, %(transcription)s, %(language)s, %(created_by)s::uuid
                      FROM (SELECT coalesce(max(generation), 0) + 1 AS next
                              FROM video_call_sessions WHERE appointment_id = %(appointment_id)s) g
                     WHERE (SELECT count(*) FROM retired) >= 0  -- forces the retire to run first
                    ON CONFLICT DO NOTHING
                    RETURNING *
                ), {_AUDIT}
                SELECT s.id::text AS session_id, s.generation, s.client_request_token, s.status,
                       s.meeting_id, s.pending_meeting, true AS claimed
                  FROM s
                UNION ALL
                SELECT v.id::text, v.generation, v.client_request_token, v.status, v.meeting_id, v.pending_meeting,
                       false
                  FROM video_call_sessions v
                 WHERE v.appointment_id = %(appointment_id)s AND v.status IN ('creating', 'active')
                   AND v.id IS DISTINCT FROM %(retire)s::uuid
                   AND NOT EXISTS (SELECT 1 FROM s)""",
            {
                "retire": retire_session_id,
                "appointment_id": appointment_id,
                "recording": recording_enabled,
                "transcription": transcription_enabled,
                "language": transcription_language,
                "created_by": created_by,
                **audit.params(),
            },
        )

    def activate_session(
        self, *, session_id: str, meeting: dict[str, Any], attendee: AttendeeRecord, audit: AuditEntry
    ) -> bool:
        """Record the Chime meeting on the session and the creator's attendee. False: the session
        was failed or given another meeting meanwhile."""
        row = self._db.fetch_one(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET status = 'active', meeting_id = %(meeting_id)s, meeting_arn = %(meeting_arn)s,
                           external_meeting_id = %(external_meeting_id)s, media_region = %(media_region)s,
                           media_placement = %(media_placement)s, meeting_features = %(meeting_features)s,
                           attendee_tokens = attendee_tokens
                               || jsonb_build_object(%(user_id)s::text, %(attendee_id)s::text),
                           pending_meeting = NULL, updated_at = now()
                     WHERE id = %(session_id)s::uuid AND status IN ('creating', 'active')
                       AND (meeting_id IS NULL OR meeting_id = %(meeting_id)s)
                    RETURNING id
                ), {_RECORD_ATTENDEES}, {_AUDIT}
                SELECT count(*) AS n FROM s""",
            {
                "session_id": session_id,
                "meeting_arn": meeting.get("MeetingArn"),
                "external_meeting_id": meeting.get("ExternalMeetingId"),
                "media_region": meeting.get("MediaRegion"),
                "media_placement": Jsonb(meeting.get("MediaPlacement")),
                "meeting_features": Jsonb(meeting.get("MeetingFeatures")),
                "user_id": attendee.user_id,
                "attendee_id": attendee.attendee_id,
                **_attendee_params([attendee], None),
                **audit.params(),
            },
        )
        return bool(row and row["n"])

    def keep_pending_meeting(self, session_id: str, meeting: dict[str, Any]) -> None:
        """The meeting Chime made for a create that could not finish (its attendee call was throttled):
        the retry adds its attendee to this one instead of calling CreateMeeting again. Leaves updated_at
        alone, so a create nobody retries still goes stale and is taken over."""
        self._db.execute(
            """UPDATE video_call_sessions SET pending_meeting = %(meeting)s
                WHERE id = %(session_id)s::uuid AND status = 'creating' AND pending_meeting IS NULL""",
            {"session_id": session_id, "meeting": Jsonb(meeting)},
        )

    def fail_session(self, *, session_id: str, error_message: str, audit: AuditEntry) -> bool:
        """Mark a create failed, if nobody activated it meanwhile. True when this call failed it."""
        row = self._db.fetch_one(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET status = 'failed', error_message = %(error_message)s,
                           error_occurred_at = now(), updated_at = now()
                     WHERE id = %(session_id)s::uuid AND status = 'creating'
                    RETURNING id
                ), {_AUDIT}
                SELECT count(*) AS n FROM s""",
            {"session_id": session_id, "error_message": error_message, **audit.params()},
        )
        return bool(row and row["n"])

    # --- attendees ---------------------------------------------------------------------------------
    def record_attendees(
        self, *, session_id: str, records: list[AttendeeRecord], added_by: str | None, audit: AuditEntry
    ) -> None:
        self._db.execute(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET attendee_tokens = attendee_tokens || coalesce(
                               (SELECT jsonb_object_agg(x.u, x.a)
                                  FROM unnest(%(user_ids)s::text[], %(attendee_ids)s::text[]) AS x (u, a)),
                               '{{}}'::jsonb),
                           updated_at = now()
                     WHERE id = %(session_id)s::uuid
                    RETURNING id
                ), {_RECORD_ATTENDEES}, {_AUDIT}
                SELECT 1""",
            {"session_id": session_id, **_attendee_params(records, added_by), **audit.params()},
        )

    # --- ending --------------------------------------------------------------------------------------
    def end_session(self, *, session_id: str, ended_by: str | None, audit: AuditEntry) -> Row | None:
        """Mark the session ended (idempotent: an ended session keeps its first ended_at/ended_by)."""
        return self._db.fetch_one(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET status = 'ended',
                           ended_at = coalesce(ended_at, now()),
                           ended_by = CASE WHEN status = 'ended' THEN ended_by ELSE %(ended_by)s::uuid END,
                           updated_at = now()
                     WHERE id = %(session_id)s::uuid
                    RETURNING id, ended_at, ended_by
                ), {_AUDIT}
                SELECT ended_at, ended_by::text AS ended_by FROM s""",
            {"session_id": session_id, "ended_by": ended_by, **audit.params()},
        )

    def live_sessions_to_reconcile(self, limit: int) -> list[Row]:
        """Live sessions, least recently checked against Chime first; marked checked in the same statement."""
        return self._db.fetch_all(
            """UPDATE video_call_sessions v SET reconciled_at = now()
                 FROM (SELECT id FROM video_call_sessions WHERE status = 'active'
                        ORDER BY reconciled_at NULLS FIRST LIMIT %(limit)s FOR UPDATE SKIP LOCKED) pick
                WHERE v.id = pick.id
            RETURNING v.id::text AS session_id, v.meeting_id, v.appointment_id""",
            {"limit": limit},
        )

    def end_session_by_meeting(self, *, meeting_id: str, ended_at_ms: int, audit: AuditEntry) -> float | None:
        """The meeting ended: mark its live session ended (no-op when already ended, so repeated, late
        or out-of-order events change nothing). Its duration in seconds when this call ended it."""
        row = self._db.fetch_one(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET status = 'ended', ended_at = coalesce(ended_at, to_timestamp(%(at_ms)s / 1000.0)),
                           updated_at = now()
                     WHERE meeting_id = %(meeting_id)s AND status = 'active'
                    RETURNING id, appointment_id, created_at, ended_at
                ), {_AUDIT}
                SELECT count(*) AS n, max(extract(epoch FROM ended_at - created_at)) AS seconds FROM s""",
            {"at_ms": ended_at_ms, **audit.params(), "meeting_id": meeting_id},
        )
        if row and row["n"]:
            return float(row["seconds"] or 0)
        return None

    # --- the audit trail alone (reads and denials) ----------------------------------------------------
    def audit(self, entry: AuditEntry, session_id: str | None = None) -> None:
        write_audit(self._db, entry, session_id)
