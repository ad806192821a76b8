"""Presence persistence: owns `attendee_presence` and `session_presence`.

Events are best effort (repeated, late, out of order): each is applied once (its id recorded in
`chime_events_seen` in the same statement) and only when it is newer than what the attendee's row
already reflects, so a late "joined" never revives an attendee who left after it.
"""

from __future__ import annotations

from videocall.core.db import Database, Row


class PresenceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def apply(
        self, *, event_id: str, meeting_id: str, attendee_id: str, external_user_id: str, is_pipeline: bool,
        state: str, at_ms: int, network_type: str | None,
    ) -> Row | None:  # fmt: skip
        """The attendee's new state; the row (with its session) when it changed, None otherwise."""
        return self._db.fetch_one(
            """WITH seen AS (
                   INSERT INTO chime_events_seen (event_id) VALUES (%(event_id)s) ON CONFLICT DO NOTHING RETURNING 1
               ), sess AS (
                   SELECT id FROM video_call_sessions WHERE meeting_id = %(meeting_id)s
               ), who AS (
                   SELECT ma.user_id FROM meeting_attendees ma
                    WHERE ma.session_id = (SELECT id FROM sess) AND ma.attendee_id = %(attendee_id)s
               )
               INSERT INTO attendee_presence AS p
                   (meeting_id, attendee_id, session_id, user_id, external_user_id, is_pipeline, state,
                    joined_at, left_at, network_type, last_event_ms)
               SELECT %(meeting_id)s, %(attendee_id)s, (SELECT id FROM sess), (SELECT user_id FROM who),
                      %(external_user_id)s, %(is_pipeline)s, %(state)s,
                      CASE WHEN %(state)s = 'joined' THEN to_timestamp(%(at_ms)s / 1000.0) END,
                      CASE WHEN %(state)s <> 'joined' THEN to_timestamp(%(at_ms)s / 1000.0) END,
                      %(network_type)s, %(at_ms)s
                WHERE EXISTS (SELECT 1 FROM seen)
               ON CONFLICT (meeting_id, attendee_id) DO UPDATE
                  SET state = EXCLUDED.state,
                      joined_at = coalesce(EXCLUDED.joined_at, p.joined_at),
                      left_at = CASE WHEN EXCLUDED.state = 'joined' THEN NULL ELSE EXCLUDED.left_at END,
                      network_type = coalesce(EXCLUDED.network_type, p.network_type),
                      session_id = coalesce(p.session_id, EXCLUDED.session_id),
                      user_id = coalesce(p.user_id, EXCLUDED.user_id),
                      last_event_ms = EXCLUDED.last_event_ms
                WHERE p.state <> 'deleted'
                  AND (p.last_event_ms < EXCLUDED.last_event_ms
                       OR (p.last_event_ms = EXCLUDED.last_event_ms AND EXCLUDED.state <> 'joined'))
               RETURNING session_id::text AS session_id, user_id::text AS user_id, state, is_pipeline""",
            {
                "event_id": event_id, "meeting_id": meeting_id, "attendee_id": attendee_id,
                "external_user_id": external_user_id, "is_pipeline": is_pipeline, "state": state,
                "at_ms": at_ms, "network_type": network_type,
            },
        )  # fmt: skip

    def refresh_session(self, *, session_id: str, meeting_id: str, at_ms: int) -> Row | None:
        """Recount the people connected: a person is present while any of their attendees is joined
        (per user, so an old attendee's late "left" after a rejoin changes nothing). `empty_since`
        is set when the last person left, after someone had joined, and cleared when one returns."""
        return self._db.fetch_one(
            """WITH counts AS (
                   SELECT count(DISTINCT coalesce(user_id::text, attendee_id))
                              FILTER (WHERE state = 'joined' AND NOT is_pipeline) AS people,
                          coalesce(bool_or(NOT is_pipeline AND joined_at IS NOT NULL), false) AS person_joined
                     FROM attendee_presence WHERE session_id = %(session_id)s::uuid
               )
               INSERT INTO session_presence AS sp (session_id, meeting_id, person_joined, empty_since)
               SELECT %(session_id)s::uuid, %(meeting_id)s, person_joined,
                      CASE WHEN people = 0 AND person_joined THEN to_timestamp(%(at_ms)s / 1000.0) END
                 FROM counts
               ON CONFLICT (session_id) DO UPDATE
                  SET person_joined = EXCLUDED.person_joined,
                      empty_since = CASE WHEN EXCLUDED.empty_since IS NULL THEN NULL
                                         ELSE coalesce(sp.empty_since, EXCLUDED.empty_since) END,
                      updated_at = now()
               RETURNING person_joined, empty_since""",
            {"session_id": session_id, "meeting_id": meeting_id, "at_ms": at_ms},
        )

    def left_empty(self, *, grace_seconds: int, limit: int = 100) -> list[Row]:
        """Live meetings kept up by a capture pipeline that nobody has been connected to for the grace
        period (a person had joined; they all left or dropped)."""
        return self._db.fetch_all(
            """SELECT s.id::text AS session_id, s.meeting_id, s.appointment_id, a.patient_id::text AS patient_id
                 FROM session_presence sp
                 JOIN video_call_sessions s ON s.id = sp.session_id
                 JOIN appointments a ON a.id = s.appointment_id
                WHERE sp.empty_since < now() - make_interval(secs => %(grace)s)
                  AND s.status = 'active' AND s.recording_state IN ('starting', 'on', 'interrupted')
                ORDER BY sp.empty_since LIMIT %(limit)s""",
            {"grace": grace_seconds, "limit": limit},
        )

    def of_session(self, session_id: str) -> list[Row]:
        return self._db.fetch_all(
            """SELECT attendee_id, user_id::text AS user_id, is_pipeline, state, joined_at, left_at, network_type
                 FROM attendee_presence WHERE session_id = %(session_id)s::uuid ORDER BY joined_at NULLS LAST""",
            {"session_id": session_id},
        )
