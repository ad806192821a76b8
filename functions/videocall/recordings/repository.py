"""Recording persistence: every statement the recordings context runs, one round trip each.

Owns `recordings` and `recording_artifacts`, and keeps the session's recording columns
(`recording_state`, `recording_url`, `recording_completed_at`) in the same statements, so the
session's state always tells the apps whether recording is on. Reads the patient's consent
(`appointment_consents`, owned by the consent context) in its first query, so starting costs no
extra round trip. State changes carry their audit row in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.context import CALLER_AND_APPOINTMENT, MEETING_JOINS
from videocall.core.db import Database, Row

RUNNING = ("starting", "recording", "interrupted")
# The session's recording_state for a recording in each state.
SESSION_STATE = {"starting": "starting", "recording": "on", "interrupted": "interrupted"}

_RECORDING_COLUMNS = """
    r.id::text AS recording_id, r.session_id::text AS session_id, r.meeting_id, r.appointment_id,
    r.sequence, r.client_request_token, r.s3_prefix, r.state, r.capture_pipeline_id,
    r.capture_pipeline_arn, r.concatenation_pipeline_id, r.started_at, r.stopped_at, r.completed_at,
    r.started_by::text AS started_by, r.stopped_by::text AS stopped_by, r.stop_reason, r.error_message,
    r.keep_media, r.updated_at < now() - interval '60 seconds' AS start_stale"""

# The latest recording's columns, from a LATERAL join aliased r (all NULL when there is none).
_LATEST_RECORDING = """
    r.id::text AS recording_id, r.sequence, r.state, r.client_request_token, r.s3_prefix,
    r.capture_pipeline_id, r.capture_pipeline_arn, r.concatenation_pipeline_id, r.started_at, r.stopped_at,
    r.completed_at, r.stop_reason, r.keep_media"""

# A recording's artifacts as a JSON array (kind, key, sizeBytes, durationMs).
_ARTIFACTS = """(SELECT coalesce(json_agg(json_build_object(
                    'kind', x.kind, 'key', x.s3_key, 'sizeBytes', x.size_bytes, 'durationMs', x.duration_ms)
                    ORDER BY x.kind, x.s3_key), '[]'::json)
           FROM recording_artifacts x WHERE x.recording_id = r.id) AS artifacts"""

# Sets the session's recording state from the capture row(s) in CTE `r` (session_id, state, keep_media):
# a capture kept only for the transcript (keep_media false) is not a recording: the session shows 'off'.
_SESSION_FOLLOWS = """
    session_follows AS (
        UPDATE video_call_sessions v
           SET recording_state = CASE WHEN r.state IN ('starting', 'recording', 'interrupted') AND r.keep_media
                                      THEN CASE r.state WHEN 'recording' THEN 'on' ELSE r.state END
                                      ELSE 'off' END,
               updated_at = now()
          FROM r WHERE v.id = r.session_id
    )"""


@dataclass(frozen=True)
class ArtifactRecord:
    s3_key: str
    kind: str
    size_bytes: int
    duration_ms: int | None


class RecordingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the access path: caller, meeting, consent, the latest recording -------------------------
    def meeting_context(self, firebase_uid: str, meeting_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT},
                       s.id::text AS session_id, s.status AS session_status, s.meeting_arn,
                       s.recording_state AS session_recording_state, s.created_by::text AS created_by,
                       c.recording AS consent_recording,
                       {_LATEST_RECORDING}
                  {MEETING_JOINS}
                  LEFT JOIN appointment_consents c ON c.appointment_id = a.id
                  LEFT JOIN LATERAL (SELECT * FROM recordings x WHERE x.session_id = s.id
                                      ORDER BY x.sequence DESC LIMIT 1) r ON true
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id},
        )

    def session_by_id(self, session_id: str) -> Row | None:
        """A session and its latest recording, for starts made by the system (consent granted later)."""
        return self._db.read_one(
            f"""SELECT s.id::text AS session_id, s.status AS session_status, s.meeting_id, s.meeting_arn,
                      s.appointment_id, a.provider_id::text AS provider_id, a.patient_id::text AS patient_id,
                      s.recording_state AS session_recording_state, c.recording AS consent_recording,
                      {_LATEST_RECORDING}
                 FROM video_call_sessions s
                 JOIN appointments a ON a.id = s.appointment_id
                 LEFT JOIN appointment_consents c ON c.appointment_id = a.id
                 LEFT JOIN LATERAL (SELECT * FROM recordings x WHERE x.session_id = s.id
                                     ORDER BY x.sequence DESC LIMIT 1) r ON true
                WHERE s.id = %(session_id)s::uuid""",
            {"session_id": session_id},
        )

    # --- starting ------------------------------------------------------------------------------
    def claim(
        self, *, session_id: str, meeting_id: str, appointment_id: str, prefix: str, started_by: str | None,
        wait_for_consent: bool, audit: AuditEntry, purpose: str = "recording",
    ) -> Row | None:  # fmt: skip
        """Insert the meeting's next recording as 'starting' while the patient's recording consent is
        granted (checked in this same statement, so a withdrawal cannot slip between check and start),
        or return the running one. `outcome`: claimed | running | no_consent (then, with
        `wait_for_consent`, the session shows recording as waiting for consent). None means a
        concurrent claim committed after this statement's snapshot: call again."""
        return self._db.fetch_one(
            f"""WITH consent AS (
                    SELECT 1 FROM appointment_consents
                     WHERE appointment_id = %(appointment_id)s
                       AND CASE WHEN %(purpose)s = 'recording' THEN recording ELSE transcription END = 'granted'
                ), ins AS (
                    INSERT INTO recordings
                        (session_id, meeting_id, appointment_id, sequence, client_request_token, s3_prefix,
                         state, started_by, keep_media)
                    SELECT %(session_id)s::uuid, %(meeting_id)s, %(appointment_id)s, n.next,
                           %(meeting_id)s || '-r' || n.next, %(prefix)s || '/r' || n.next, 'starting',
                           %(started_by)s::uuid, %(purpose)s = 'recording'
                      FROM (SELECT coalesce(max(sequence), 0) + 1 AS next
                              FROM recordings WHERE session_id = %(session_id)s::uuid) n
                     WHERE EXISTS (SELECT 1 FROM consent)
                    ON CONFLICT DO NOTHING
                    RETURNING *
                ), r AS (SELECT session_id, state, keep_media FROM ins), {_SESSION_FOLLOWS},
                waiting AS (
                    UPDATE video_call_sessions SET recording_state = 'waiting_for_consent', updated_at = now()
                     WHERE id = %(session_id)s::uuid AND %(wait)s AND recording_state = 'off'
                       AND %(purpose)s = 'recording' AND NOT EXISTS (SELECT 1 FROM consent)
                    RETURNING id
                ),
                s AS (SELECT session_id AS id FROM ins), {AUDIT_CTE},
                refused AS (
                    INSERT INTO audit_events
                        (actor_user_id, action, outcome, appointment_id, patient_id, session_id, meeting_id,
                         request_id, details)
                    SELECT %(actor)s::uuid, %(action)s, 'denied', %(appointment_id)s, %(patient_id)s::uuid,
                           %(session_id)s::uuid, %(meeting_id)s, %(request_id)s,
                           jsonb_build_object('reason', 'consent_required', 'waiting', %(wait)s)
                     WHERE NOT EXISTS (SELECT 1 FROM consent)
                )
                SELECT {_RECORDING_COLUMNS}, 'claimed' AS outcome FROM ins r
                UNION ALL
                SELECT {_RECORDING_COLUMNS}, 'running' FROM recordings r
                 WHERE r.session_id = %(session_id)s::uuid AND r.state IN ('starting', 'recording', 'interrupted')
                   AND EXISTS (SELECT 1 FROM consent) AND NOT EXISTS (SELECT 1 FROM ins)
                UNION ALL
                SELECT {", ".join(["NULL"] * 20)}, 'no_consent' WHERE NOT EXISTS (SELECT 1 FROM consent)""",
            {
                "session_id": session_id, "meeting_id": meeting_id, "appointment_id": appointment_id,
                "prefix": prefix, "started_by": started_by, "wait": wait_for_consent, "purpose": purpose,
                **audit.params(),
            },
        )  # fmt: skip

    def activate(self, *, recording_id: str, capture: Any, concatenation: Any) -> Row | None:
        """The pipelines exist: the recording is on (unless an event already moved it further). The
        pipeline ids are stored whatever happens; the state moves to 'recording' only while the
        patient's consent still holds (a withdrawal during the start wins): `consented` says which."""
        return self._db.fetch_one(
            f"""WITH consent AS (
                    SELECT 1 FROM appointment_consents c JOIN recordings x ON x.appointment_id = c.appointment_id
                     WHERE x.id = %(recording_id)s::uuid
                       AND CASE WHEN x.keep_media THEN c.recording ELSE c.transcription END = 'granted'
                ), r AS (
                    UPDATE recordings
                       SET capture_pipeline_id = %(capture_id)s, capture_pipeline_arn = %(capture_arn)s,
                           concatenation_pipeline_id = %(concat_id)s,
                           concatenation_pipeline_arn = %(concat_arn)s,
                           state = CASE WHEN state = 'starting' AND EXISTS (SELECT 1 FROM consent)
                                        THEN 'recording' ELSE state END,
                           updated_at = now()
                     WHERE id = %(recording_id)s::uuid
                    RETURNING *
                ), {_SESSION_FOLLOWS}
                SELECT {_RECORDING_COLUMNS}, EXISTS (SELECT 1 FROM consent) AS consented FROM r""",
            {
                "recording_id": recording_id, "capture_id": capture.id, "capture_arn": capture.arn,
                "concat_id": concatenation.id, "concat_arn": concatenation.arn,
            },
        )  # fmt: skip

    def fail(self, *, recording_id: str, error: str, audit: AuditEntry) -> None:
        """A start Chime refused: the recording failed, and the session records the error."""
        self._db.execute(
            f"""WITH r AS (
                    UPDATE recordings
                       SET state = 'failed', error_message = %(error)s, error_occurred_at = now(), updated_at = now()
                     WHERE id = %(recording_id)s::uuid AND state IN ('starting', 'recording', 'interrupted')
                    RETURNING session_id, state
                ), err AS (
                    -- one UPDATE per session row per statement (a second one would be ignored)
                    UPDATE video_call_sessions v
                       SET recording_state = 'off', error_message = %(error)s, error_occurred_at = now(),
                           updated_at = now()
                      FROM r WHERE v.id = r.session_id
                ), s AS (SELECT session_id AS id FROM r), {AUDIT_CTE}
                SELECT 1""",
            {"recording_id": recording_id, "error": error, **audit.params()},
        )

    # --- stopping ------------------------------------------------------------------------------
    def stop(self, *, recording_id: str, stopped_by: str | None, reason: str, audit: AuditEntry) -> Row | None:
        """The capture was asked to stop: the recording is processing (concatenation runs)."""
        return self._db.fetch_one(
            f"""WITH r AS (
                    UPDATE recordings
                       SET state = 'processing', stopped_at = now(), stopped_by = %(stopped_by)s::uuid,
                           stop_reason = %(reason)s, updated_at = now()
                     WHERE id = %(recording_id)s::uuid AND state IN ('recording', 'interrupted', 'starting')
                    RETURNING *
                ), {_SESSION_FOLLOWS}, s AS (SELECT session_id AS id FROM r), {AUDIT_CTE}
                SELECT {_RECORDING_COLUMNS} FROM r""",
            {"recording_id": recording_id, "stopped_by": stopped_by, "reason": reason, **audit.params()},
        )

    def running(self, *, meeting_id: str | None = None, appointment_id: str | None = None) -> list[Row]:
        """Running recordings of a meeting, or of an appointment's meetings."""
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS}, a.patient_id::text AS patient_id, v.meeting_arn
                  FROM recordings r JOIN appointments a ON a.id = r.appointment_id
                  JOIN video_call_sessions v ON v.id = r.session_id
                 WHERE r.state IN ('starting', 'recording', 'interrupted')
                   AND (r.meeting_id = %(meeting_id)s OR r.appointment_id = %(appointment_id)s)""",
            {"meeting_id": meeting_id, "appointment_id": appointment_id},
        )

    def waiting_for_consent(self, appointment_id: str) -> list[Row]:
        return self._db.fetch_all(
            """SELECT s.id::text AS session_id FROM video_call_sessions s
                WHERE s.appointment_id = %(appointment_id)s AND s.status = 'active'
                  AND s.recording_state = 'waiting_for_consent'""",
            {"appointment_id": appointment_id},
        )

    # --- pipeline events -------------------------------------------------------------------------
    def by_pipeline(self, pipeline_id: str) -> Row | None:
        return self._db.fetch_one(
            f"""SELECT {_RECORDING_COLUMNS}, a.patient_id::text AS patient_id,
                       CASE WHEN r.capture_pipeline_id = %(id)s THEN 'capture' ELSE 'concatenation' END AS kind
                  FROM recordings r JOIN appointments a ON a.id = r.appointment_id
                 WHERE r.capture_pipeline_id = %(id)s OR r.concatenation_pipeline_id = %(id)s""",
            {"id": pipeline_id},
        )

    def apply_event(
        self, *, recording_id: str, event_id: str, state: str, from_states: tuple[str, ...], at_ms: int,
        ordered: bool, error: str | None, audit: AuditEntry,
    ) -> bool:  # fmt: skip
        """Move a recording to `state` if it is in one of `from_states`, the event is new (its id not
        seen before) and, for `ordered` transitions (those that can go back and forth), no newer event
        has been seen: every event seen moves `last_event_ms`, whether it changed the state or not, so
        an older event arriving late never undoes a newer one. True when the state changed."""
        row = self._db.fetch_one(
            f"""WITH seen AS (
                    INSERT INTO chime_events_seen (event_id) VALUES (%(event_id)s)
                    ON CONFLICT DO NOTHING RETURNING 1
                ), cur AS (
                    SELECT id, state = ANY(%(from_states)s) AND (NOT %(ordered)s OR last_event_ms <= %(at_ms)s)
                               AS applies
                      FROM recordings WHERE id = %(recording_id)s::uuid AND EXISTS (SELECT 1 FROM seen)
                ), changed AS (
                    UPDATE recordings x
                       SET state = CASE WHEN cur.applies THEN %(state)s ELSE x.state END,
                           last_event_ms = greatest(x.last_event_ms, %(at_ms)s),
                           stopped_at = CASE WHEN cur.applies AND %(state)s = 'processing'
                                             THEN coalesce(x.stopped_at, to_timestamp(%(at_ms)s / 1000.0))
                                             ELSE x.stopped_at END,
                           error_message = CASE WHEN cur.applies THEN coalesce(%(error)s, x.error_message)
                                                ELSE x.error_message END,
                           error_occurred_at = CASE WHEN cur.applies AND %(error)s::text IS NOT NULL THEN now()
                                                    ELSE x.error_occurred_at END,
                           updated_at = CASE WHEN cur.applies THEN now() ELSE x.updated_at END
                      FROM cur WHERE x.id = cur.id
                    RETURNING x.session_id, x.state, x.keep_media, cur.applies
                ), r AS (SELECT session_id, state, keep_media FROM changed WHERE applies), {_SESSION_FOLLOWS},
                s AS (SELECT session_id AS id FROM r), {AUDIT_CTE}
                SELECT count(*) AS n FROM r""",
            {
                "recording_id": recording_id, "event_id": event_id, "state": state,
                "from_states": list(from_states), "at_ms": at_ms, "ordered": ordered, "error": error,
                **audit.params(),
            },
        )  # fmt: skip
        return bool(row and row["n"])

    def complete(self, *, recording_id: str, artifacts: list[ArtifactRecord], url: str, audit: AuditEntry) -> bool:
        """The concatenation's files landed: record them; the session points at this recording."""
        row = self._db.fetch_one(
            f"""WITH r AS (
                    UPDATE recordings SET state = 'completed', completed_at = now(), updated_at = now()
                     WHERE id = %(recording_id)s::uuid AND state IN ('processing', 'recording', 'interrupted')
                    RETURNING id, session_id, state
                ), art AS (
                    INSERT INTO recording_artifacts (recording_id, s3_key, kind, size_bytes, duration_ms)
                    SELECT r.id, x.key, x.kind, x.size, x.duration
                      FROM r, unnest(%(keys)s::text[], %(kinds)s::text[], %(sizes)s::bigint[],
                                     %(durations)s::bigint[]) AS x (key, kind, size, duration)
                    ON CONFLICT DO NOTHING
                ), latest AS (
                    UPDATE video_call_sessions v
                       SET recording_url = %(url)s, recording_completed_at = now(), updated_at = now(),
                           recording_state = CASE
                               WHEN v.recording_state IN ('starting', 'on', 'interrupted')
                                AND NOT EXISTS (SELECT 1 FROM recordings x WHERE x.session_id = v.id
                                                   AND x.state IN ('starting', 'recording', 'interrupted'))
                               THEN 'off' ELSE v.recording_state END
                      FROM r WHERE v.id = r.session_id
                ), s AS (SELECT session_id AS id FROM r), {AUDIT_CTE}
                SELECT count(*) AS n FROM r""",
            {
                "recording_id": recording_id, "url": url,
                "keys": [a.s3_key for a in artifacts], "kinds": [a.kind for a in artifacts],
                "sizes": [a.size_bytes for a in artifacts], "durations": [a.duration_ms for a in artifacts],
                **audit.params(),
            },
        )  # fmt: skip
        return bool(row and row["n"])

    # --- reading ---------------------------------------------------------------------------------
    def recordings_of_session(self, session_id: str) -> list[Row]:
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS},
                       {_ARTIFACTS}
                  FROM recordings r WHERE r.session_id = %(session_id)s::uuid AND r.keep_media
                 ORDER BY r.sequence""",
            {"session_id": session_id},
        )

    def audit_many(self, entries: list[AuditEntry], session_id: str | None) -> None:
        """Several audit rows (one per download link issued) in one round trip."""
        if not entries:
            return
        self._db.execute(
            """INSERT INTO audit_events
                   (actor_user_id, action, outcome, appointment_id, patient_id, session_id, meeting_id,
                    request_id, details)
               SELECT x.actor, x.action, 'allowed', x.appointment_id, x.patient_id, %(session_id)s::uuid,
                      x.meeting_id, x.request_id, x.details
                 FROM unnest(%(actors)s::uuid[], %(actions)s::text[], %(appointments)s::text[],
                             %(patients)s::uuid[], %(meetings)s::text[], %(requests)s::text[],
                             %(details)s::jsonb[])
                      AS x (actor, action, appointment_id, patient_id, meeting_id, request_id, details)""",
            {
                "session_id": session_id,
                "actors": [e.actor for e in entries], "actions": [e.action for e in entries],
                "appointments": [e.appointment_id for e in entries], "patients": [e.patient_id for e in entries],
                "meetings": [e.meeting_id for e in entries], "requests": [e.request_id for e in entries],
                "details": [Jsonb(e.details or {}) for e in entries],
            },
        )  # fmt: skip

    # --- the reconciler ----------------------------------------------------------------------------
    def unfinished(self, *, older_than_seconds: int, starting_seconds: int = 120, limit: int = 100) -> list[Row]:
        """Recordings 'processing' longer than they should be, or 'starting' longer than a start takes."""
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS}, a.patient_id::text AS patient_id, v.meeting_arn
                  FROM recordings r JOIN appointments a ON a.id = r.appointment_id
                  JOIN video_call_sessions v ON v.id = r.session_id
                 WHERE (r.state = 'processing' AND r.updated_at < now() - make_interval(secs => %(seconds)s))
                    OR (r.state = 'starting' AND r.updated_at < now() - make_interval(secs => %(starting)s))
                 ORDER BY r.updated_at LIMIT %(limit)s""",
            {"seconds": older_than_seconds, "starting": starting_seconds, "limit": limit},
        )

    def touch(self, recording_id: str) -> None:
        self._db.execute("UPDATE recordings SET updated_at = now() WHERE id = %s::uuid", (recording_id,))

    # --- retention, export, erasure ------------------------------------------------------------------
    def of_appointments(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS},
                       {_ARTIFACTS}
                  FROM recordings r WHERE r.appointment_id = ANY(%(ids)s) ORDER BY r.started_at""",
            {"ids": appointment_ids},
        )

    def older_than(self, days: int) -> list[Row]:
        """Finished recordings past retention that still hold content."""
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS} FROM recordings r
                 WHERE r.state IN ('completed', 'failed', 'processing')
                   AND coalesce(r.completed_at, r.stopped_at, r.started_at)
                       < now() - make_interval(days => %(days)s)""",
            {"days": days},
        )

    def mark_deleted(self, *, recording_ids: list[str], audit: AuditEntry) -> int:
        """Content gone: artifact rows deleted, recordings kept as metadata ('deleted'), the session no
        longer points at them. The audit row says how many, never what they contained."""
        row = self._db.fetch_one(
            f"""WITH gone AS (
                    DELETE FROM recording_artifacts WHERE recording_id = ANY(%(ids)s::uuid[]) RETURNING 1
                ), r AS (
                    UPDATE recordings SET state = 'deleted', deleted_at = now(), updated_at = now()
                     WHERE id = ANY(%(ids)s::uuid[]) AND state <> 'deleted'
                    RETURNING id, session_id
                ), unlinked AS (
                    UPDATE video_call_sessions v SET recording_url = NULL, recording_completed_at = NULL
                     WHERE v.id IN (SELECT session_id FROM r)
                ), s AS (SELECT NULL::uuid AS id), {AUDIT_CTE}
                SELECT (SELECT count(*) FROM r) AS n""",
            {"ids": recording_ids, **audit.params()},
        )
        return int(row["n"]) if row else 0

    # --- captures kept only for the transcript ----------------------------------------------------------
    def transcript_files(self, session_id: str) -> list[Row]:
        """The concatenated transcription-messages files of a meeting's completed captures, in order."""
        return self._db.fetch_all(
            """SELECT r.id::text AS recording_id, r.sequence, x.s3_key
                 FROM recordings r JOIN recording_artifacts x ON x.recording_id = r.id
                WHERE r.session_id = %(session_id)s::uuid AND r.state = 'completed'
                  AND x.kind = 'transcription-messages'
                ORDER BY r.sequence, x.s3_key""",
            {"session_id": session_id},
        )

    def media_to_discard(self, session_id: str | None, limit: int = 50) -> list[Row]:
        """Finished captures (completed or failed) that were kept only for the transcript and may still
        hold media: of one session, or of any (the reconciler's pass)."""
        return self._db.fetch_all(
            f"""SELECT {_RECORDING_COLUMNS}, a.patient_id::text AS patient_id FROM recordings r
                  JOIN appointments a ON a.id = r.appointment_id
                 WHERE (%(session_id)s::uuid IS NULL OR r.session_id = %(session_id)s::uuid)
                   AND NOT r.keep_media AND r.state IN ('completed', 'failed') AND r.media_deleted_at IS NULL
                 LIMIT %(limit)s""",
            {"session_id": session_id, "limit": limit},
        )

    def media_discarded(self, *, recording_id: str, kinds: tuple[str, ...], audit: AuditEntry) -> None:
        self._db.execute(
            f"""WITH gone AS (
                    DELETE FROM recording_artifacts WHERE recording_id = %(id)s::uuid AND kind = ANY(%(kinds)s)
                ), r AS (
                    UPDATE recordings SET media_deleted_at = now(), updated_at = now()
                     WHERE id = %(id)s::uuid RETURNING session_id
                ), s AS (SELECT session_id AS id FROM r), {AUDIT_CTE}
                SELECT 1""",
            {"id": recording_id, "kinds": list(kinds), **audit.params()},
        )
