"""Transcript persistence: owns `call_transcripts`, `call_transcript_segments`, `call_medical_entities`,
`call_icd10_candidates`, and the session's transcription columns (`transcription_state`, ...,
`transcript`, `transcript_segments`: the old schema's columns, filled from the segments).

Reads, by design and read-only: the patient's consent (transcription, AI processing) in its first
query; `meeting_attendees` to name who spoke. One round trip per method; changes carry their audit row.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from videocall.core.audit import AUDIT_CTE, AuditEntry, write_audit
from videocall.core.context import CALLER_AND_APPOINTMENT, MEETING_JOINS
from videocall.core.db import Database, Row
from videocall.transcripts.assembly import Transcript
from videocall.transcripts.medical import Extraction

_TRANSCRIPT_STATE = """t.session_id::text AS transcript_session_id, t.people_heard, t.partial_coverage,
    t.malformed_lines, t.built_at, t.language AS transcript_language, t.medical_state, t.medical_reason,
    t.summary_state, t.summary_reason, t.summary_text, t.summary_model, t.summary_created_at,
    t.summary_reviewed_by::text AS summary_reviewed_by, t.summary_reviewed_at, t.deleted_at AS transcript_deleted_at"""


class TranscriptRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the access path ------------------------------------------------------------------------------
    def meeting_context(self, firebase_uid: str, meeting_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {CALLER_AND_APPOINTMENT},
                       s.id::text AS session_id, s.status AS session_status, s.meeting_id, s.meeting_arn,
                       s.transcription_state, s.transcription_language, s.transcription_engine,
                       s.transcription_region, s.recording_state, s.created_by::text AS created_by,
                       c.transcription AS consent_transcription, c.ai_processing AS consent_ai,
                       {_TRANSCRIPT_STATE}
                  {MEETING_JOINS}
                  LEFT JOIN appointment_consents c ON c.appointment_id = a.id
                  LEFT JOIN call_transcripts t ON t.session_id = s.id
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id},
        )

    # --- live transcription state ------------------------------------------------------------------------
    def set_state(
        self, *, session_id: str, state: str, language: str | None, engine: str | None, region: str | None,
        audit: AuditEntry, only_from: tuple[str, ...] | None = None, only_with_consent: bool = False,
    ) -> bool:  # fmt: skip
        """A change made by the API: it also moves the newest-event time to now, so a Chime event older
        than this change (a late TranscriptionStarted after a stop) never undoes it."""
        row = self._db.fetch_one(
            f"""WITH s AS (
                    UPDATE video_call_sessions
                       SET transcription_state = %(state)s,
                           transcription_language = coalesce(%(language)s, transcription_language),
                           transcription_engine = coalesce(%(engine)s, transcription_engine),
                           transcription_region = coalesce(%(region)s, transcription_region),
                           transcription_enabled = transcription_enabled OR %(state)s IN ('starting', 'on'),
                           transcription_last_event_ms = greatest(
                               transcription_last_event_ms, (extract(epoch FROM clock_timestamp()) * 1000)::bigint),
                           updated_at = now()
                     WHERE id = %(session_id)s::uuid
                       AND (%(only_from)s::text[] IS NULL OR transcription_state = ANY(%(only_from)s::text[]))
                       AND (NOT %(with_consent)s OR EXISTS (
                               SELECT 1 FROM appointment_consents c
                                 JOIN video_call_sessions v ON v.appointment_id = c.appointment_id
                                WHERE v.id = %(session_id)s::uuid AND c.transcription = 'granted'))
                    RETURNING id
                ), {AUDIT_CTE}
                SELECT count(*) AS n FROM s""",
            {
                "session_id": session_id, "state": state, "language": language, "engine": engine, "region": region,
                "only_from": list(only_from) if only_from else None, "with_consent": only_with_consent,
                **audit.params(),
            },
        )  # fmt: skip
        return bool(row and row["n"])

    def consented(self, session_id: str) -> bool:
        row = self._db.fetch_one(
            """SELECT c.transcription = 'granted' AS ok FROM video_call_sessions s
                 JOIN appointment_consents c ON c.appointment_id = s.appointment_id WHERE s.id = %(id)s::uuid""",
            {"id": session_id},
        )
        return bool(row and row["ok"])

    def meeting_ended(self, meeting_id: str) -> None:
        """The meeting is over: nothing is transcribed any more."""
        self._db.execute(
            """UPDATE video_call_sessions SET transcription_state = 'off'
                WHERE meeting_id = %(id)s AND transcription_state IN ('starting', 'on', 'interrupted',
                                                                       'waiting_for_consent')""",
            {"id": meeting_id},
        )

    def apply_event(
        self, *, event_id: str, meeting_id: str, state: str, from_states: tuple[str, ...], at_ms: int,
        ordered: bool, error: str | None, audit: AuditEntry,
    ) -> Row | None:  # fmt: skip
        """Chime's Transcription* events on the session, each applied once (its id recorded in the same
        statement) and never undoing a newer one. The session (with its ids) when the state changed."""
        return self._db.fetch_one(
            f"""WITH seen AS (
                    INSERT INTO chime_events_seen (event_id) VALUES (%(event_id)s) ON CONFLICT DO NOTHING RETURNING 1
                ), cur AS (
                    SELECT id, transcription_state = ANY(%(from_states)s)
                               AND (NOT %(ordered)s OR transcription_last_event_ms <= %(at_ms)s) AS applies
                      FROM video_call_sessions
                     WHERE meeting_id = %(meeting_id)s AND EXISTS (SELECT 1 FROM seen)
                ), changed AS (
                    UPDATE video_call_sessions v
                       SET transcription_state = CASE WHEN cur.applies THEN %(state)s ELSE v.transcription_state END,
                           transcription_last_event_ms = greatest(v.transcription_last_event_ms, %(at_ms)s),
                           error_message = CASE WHEN cur.applies AND %(error)s::text IS NOT NULL
                                                THEN %(error)s ELSE v.error_message END,
                           error_occurred_at = CASE WHEN cur.applies AND %(error)s::text IS NOT NULL
                                                    THEN now() ELSE v.error_occurred_at END,
                           updated_at = now()
                      FROM cur WHERE v.id = cur.id
                    RETURNING v.id, v.appointment_id, cur.applies
                ), s AS (SELECT id FROM changed WHERE applies), {AUDIT_CTE}
                SELECT id::text AS session_id, appointment_id FROM changed WHERE applies""",
            {
                "event_id": event_id, "meeting_id": meeting_id, "state": state, "from_states": list(from_states),
                "at_ms": at_ms, "ordered": ordered, "error": error, **audit.params(),
            },
        )  # fmt: skip

    # --- building the transcript -------------------------------------------------------------------------
    def build_context(self, session_id: str) -> Row | None:
        """The session, its appointment's people, consent, the transcript's state, and who attended."""
        return self._db.read_one(
            f"""SELECT s.id::text AS session_id, s.meeting_id, s.appointment_id, s.status AS session_status,
                       s.ended_at, s.transcription_language, s.transcription_state, s.meeting_arn,
                       c.transcription AS consent_transcription, a.provider_id::text AS provider_id,
                       a.patient_id::text AS patient_id, a.erased_at AS appointment_erased_at,
                       c.ai_processing AS consent_ai, {_TRANSCRIPT_STATE},
                       (SELECT coalesce(json_agg(json_build_object(
                                   'userId', m.user_id, 'attendeeId', m.attendee_id,
                                   'externalUserId', m.external_user_id)), '[]'::json)
                          FROM meeting_attendees m WHERE m.session_id = s.id) AS attendees
                  FROM video_call_sessions s
                  JOIN appointments a ON a.id = s.appointment_id
                  LEFT JOIN appointment_consents c ON c.appointment_id = a.id
                  LEFT JOIN call_transcripts t ON t.session_id = s.id
                 WHERE s.id = %(session_id)s::uuid""",
            {"session_id": session_id},
        )

    def store(
        self, *, session_id: str, meeting_id: str, appointment_id: str, language: str | None,
        transcript: Transcript, malformed: int, captures: int, summary_state: str, audit: AuditEntry,
    ) -> None:  # fmt: skip
        """The transcript, replacing any earlier build of it (the same files give the same rows); the
        session's old-schema columns are filled from it. Medical extraction starts over (pending)."""
        segments = transcript.segments
        self._db.execute(
            f"""WITH t AS (
                    INSERT INTO call_transcripts AS t
                        (session_id, meeting_id, appointment_id, language, people_heard, partial_coverage,
                         malformed_lines, captures, medical_state, summary_state, built_at)
                    VALUES (%(session_id)s::uuid, %(meeting_id)s, %(appointment_id)s, %(language)s, %(people)s,
                            %(partial)s, %(malformed)s, %(captures)s, 'pending', %(summary_state)s, now())
                    ON CONFLICT (session_id) DO UPDATE
                       SET language = EXCLUDED.language, people_heard = EXCLUDED.people_heard,
                           partial_coverage = EXCLUDED.partial_coverage, malformed_lines = EXCLUDED.malformed_lines,
                           captures = EXCLUDED.captures, medical_state = 'pending', medical_reason = NULL,
                           summary_state = CASE WHEN t.summary_state = 'reviewed' THEN t.summary_state
                                                ELSE EXCLUDED.summary_state END,
                           built_at = now(), deleted_at = NULL
                    RETURNING session_id
                ), cleared_entities AS (
                    DELETE FROM call_medical_entities WHERE session_id = %(session_id)s::uuid
                ), cleared_codes AS (
                    DELETE FROM call_icd10_candidates WHERE session_id = %(session_id)s::uuid
                ), seg AS (
                    INSERT INTO call_transcript_segments
                        (session_id, sequence, meeting_id, start_ms, end_ms, speaker_user_id, speaker_role, text,
                         confidence)
                    SELECT t.session_id, x.sequence, %(meeting_id)s, x.start_ms, x.end_ms, x.user_id, x.role,
                           x.text, x.confidence
                      FROM t, unnest(%(sequences)s::int[], %(starts)s::bigint[], %(ends)s::bigint[],
                                     %(users)s::uuid[], %(roles)s::text[], %(texts)s::text[], %(confidences)s::real[])
                           AS x (sequence, start_ms, end_ms, user_id, role, text, confidence)
                    ON CONFLICT (session_id, sequence) DO UPDATE
                       SET start_ms = EXCLUDED.start_ms, end_ms = EXCLUDED.end_ms,
                           speaker_user_id = EXCLUDED.speaker_user_id, speaker_role = EXCLUDED.speaker_role,
                           text = EXCLUDED.text, confidence = EXCLUDED.confidence
                ), old_schema AS (
                    UPDATE video_call_sessions
                       SET transcript = %(text)s, transcript_segments = %(segments_json)s, updated_at = now()
                     WHERE id = %(session_id)s::uuid
                ), s AS (SELECT session_id AS id FROM t), {AUDIT_CTE}
                SELECT 1""",
            {
                "session_id": session_id, "meeting_id": meeting_id, "appointment_id": appointment_id,
                "language": language, "people": transcript.people_heard, "partial": transcript.partial_coverage,
                "malformed": malformed, "captures": captures, "summary_state": summary_state,
                "sequences": [s.sequence for s in segments], "starts": [s.start_ms for s in segments],
                "ends": [s.end_ms for s in segments], "users": [s.speaker_user_id for s in segments],
                "roles": [s.speaker_role for s in segments], "texts": [s.text for s in segments],
                "confidences": [s.confidence for s in segments], "text": transcript.text,
                "segments_json": Jsonb([
                    {"sequence": s.sequence, "startMs": s.start_ms, "endMs": s.end_ms,
                     "speakerUserId": s.speaker_user_id, "speakerRole": s.speaker_role, "text": s.text,
                     "confidence": s.confidence} for s in segments]),
                **audit.params(),
            },
        )  # fmt: skip
        # Turns left over from a longer earlier build (the upsert above replaced the others).
        self._db.execute(
            "DELETE FROM call_transcript_segments WHERE session_id = %(id)s::uuid AND sequence > %(n)s",
            {"id": session_id, "n": len(segments)},
        )

    def audit(self, entry: AuditEntry, session_id: str | None) -> None:
        write_audit(self._db, entry, session_id)

    def live_transcriptions(self, appointment_id: str) -> list[Row]:
        return self._db.fetch_all(
            """SELECT id::text AS session_id, meeting_id, meeting_arn, transcription_state FROM video_call_sessions
                WHERE appointment_id = %(id)s AND status = 'active'
                  AND transcription_state IN ('starting', 'on', 'interrupted', 'waiting_for_consent')""",
            {"id": appointment_id},
        )

    def waiting_sessions(self, appointment_id: str) -> list[Row]:
        return self._db.fetch_all(
            """SELECT s.id::text AS session_id, s.meeting_id, s.meeting_arn, s.status AS session_status,
                      s.transcription_state, s.transcription_language, a.provider_id::text AS provider_id,
                      a.patient_id::text AS patient_id
                 FROM video_call_sessions s JOIN appointments a ON a.id = s.appointment_id
                WHERE s.appointment_id = %(id)s AND s.status = 'active'
                  AND s.transcription_state = 'waiting_for_consent'""",
            {"id": appointment_id},
        )

    def segments(self, session_id: str, *, after: int = 0, limit: int = 10_000) -> list[Row]:
        return self._db.fetch_all(
            """SELECT sequence, start_ms, end_ms, speaker_user_id::text AS speaker_user_id, speaker_role, text,
                      confidence
                 FROM call_transcript_segments WHERE session_id = %(id)s::uuid AND sequence > %(after)s
                ORDER BY sequence LIMIT %(limit)s""",
            {"id": session_id, "after": after, "limit": limit},
        )

    # --- the clinical record ------------------------------------------------------------------------------
    def store_extraction(self, *, session_id: str, extraction: Extraction, audit: AuditEntry) -> None:
        e, c = extraction.entities, extraction.icd10
        self._db.execute(
            f"""WITH cleared_entities AS (
                    DELETE FROM call_medical_entities WHERE session_id = %(id)s::uuid
                ), cleared_codes AS (
                    DELETE FROM call_icd10_candidates WHERE session_id = %(id)s::uuid
                ), ents AS (
                    INSERT INTO call_medical_entities
                        (session_id, ordinal, segment_sequence, category, type, text, score, traits,
                         begin_offset, end_offset)
                    SELECT %(id)s::uuid, x.ordinal, x.seq, x.category, x.type, x.text, x.score,
                           string_to_array(x.traits, ','), x.b, x.e
                      FROM unnest(%(e_ord)s::int[], %(e_seq)s::int[], %(e_cat)s::text[], %(e_type)s::text[],
                                  %(e_text)s::text[], %(e_score)s::real[], %(e_traits)s::text[], %(e_b)s::int[],
                                  %(e_e)s::int[]) AS x (ordinal, seq, category, type, text, score, traits, b, e)
                    ON CONFLICT (session_id, ordinal) DO UPDATE SET text = EXCLUDED.text
                ), codes AS (
                    INSERT INTO call_icd10_candidates
                        (session_id, ordinal, segment_sequence, code, description, score, text, begin_offset,
                         end_offset)
                    SELECT %(id)s::uuid, x.ordinal, x.seq, x.code, x.description, x.score, x.text, x.b, x.e
                      FROM unnest(%(c_ord)s::int[], %(c_seq)s::int[], %(c_code)s::text[], %(c_desc)s::text[],
                                  %(c_score)s::real[], %(c_text)s::text[], %(c_b)s::int[], %(c_e)s::int[])
                           AS x (ordinal, seq, code, description, score, text, b, e)
                    ON CONFLICT (session_id, ordinal) DO UPDATE SET code = EXCLUDED.code
                ), t AS (
                    UPDATE call_transcripts
                       SET medical_state = 'complete', medical_reason = NULL, medical_calls = %(calls)s,
                           medical_completed_at = now()
                     WHERE session_id = %(id)s::uuid RETURNING session_id
                ), s AS (SELECT session_id AS id FROM t), {AUDIT_CTE}
                SELECT 1""",
            {
                "id": session_id, "calls": extraction.calls,
                "e_ord": list(range(1, len(e) + 1)), "e_seq": [x.segment_sequence for x in e],
                "e_cat": [x.category for x in e], "e_type": [x.type for x in e], "e_text": [x.text for x in e],
                "e_score": [x.score for x in e], "e_traits": [",".join(x.traits) for x in e],
                "e_b": [x.begin for x in e], "e_e": [x.end for x in e],
                "c_ord": list(range(1, len(c) + 1)), "c_seq": [x.segment_sequence for x in c],
                "c_code": [x.code for x in c], "c_desc": [x.description for x in c],
                "c_score": [x.score for x in c], "c_text": [x.text for x in c],
                "c_b": [x.begin for x in c], "c_e": [x.end for x in c],
                **audit.params(),
            },
        )  # fmt: skip

    def mark(self, *, session_id: str, medical: tuple[str, str | None] | None = None,
             summary: tuple[str, str | None] | None = None) -> None:  # fmt: skip
        """Set the medical or summary state with its reason (skipped/incomplete and why)."""
        self._db.execute(
            """UPDATE call_transcripts
                  SET medical_state = coalesce(%(m_state)s, medical_state),
                      medical_reason = CASE WHEN %(m_state)s::text IS NULL THEN medical_reason ELSE %(m_reason)s END,
                      summary_state = coalesce(%(s_state)s, summary_state),
                      summary_text = CASE WHEN %(s_state)s = 'skipped' THEN NULL ELSE summary_text END,
                      summary_reason = CASE WHEN %(s_state)s::text IS NULL THEN summary_reason ELSE %(s_reason)s END
                WHERE session_id = %(id)s::uuid""",
            {
                "id": session_id,
                "m_state": medical[0] if medical else None, "m_reason": medical[1] if medical else None,
                "s_state": summary[0] if summary else None, "s_reason": summary[1] if summary else None,
            },
        )  # fmt: skip

    def clinical_record(self, session_id: str) -> Row | None:
        return self._db.fetch_one(
            """SELECT (SELECT coalesce(json_agg(json_build_object(
                          'segment', e.segment_sequence, 'category', e.category, 'type', e.type, 'text', e.text,
                          'score', e.score, 'traits', e.traits, 'begin', e.begin_offset, 'end', e.end_offset)
                          ORDER BY e.ordinal), '[]'::json)
                         FROM call_medical_entities e WHERE e.session_id = %(id)s::uuid) AS entities,
                      (SELECT coalesce(json_agg(json_build_object(
                          'segment', c.segment_sequence, 'code', c.code, 'description', c.description,
                          'score', c.score, 'text', c.text) ORDER BY c.ordinal), '[]'::json)
                         FROM call_icd10_candidates c WHERE c.session_id = %(id)s::uuid) AS icd10""",
            {"id": session_id},
        )

    def store_summary(self, *, session_id: str, text: str, model: str, audit: AuditEntry) -> None:
        self._db.execute(
            f"""WITH t AS (
                    UPDATE call_transcripts
                       SET summary_state = 'draft', summary_reason = NULL, summary_text = %(text)s,
                           summary_model = %(model)s, summary_created_at = now(), summary_reviewed_by = NULL,
                           summary_reviewed_at = NULL
                     WHERE session_id = %(id)s::uuid AND summary_state <> 'reviewed' RETURNING session_id
                ), s AS (SELECT session_id AS id FROM t), {AUDIT_CTE}
                SELECT 1""",
            {"id": session_id, "text": text, "model": model, **audit.params()},
        )

    def review_summary(self, *, session_id: str, reviewer: str, audit: AuditEntry) -> Row | None:
        return self._db.fetch_one(
            f"""WITH t AS (
                    UPDATE call_transcripts
                       SET summary_state = 'reviewed', summary_reviewed_by = %(reviewer)s::uuid,
                           summary_reviewed_at = coalesce(summary_reviewed_at, now())
                     WHERE session_id = %(id)s::uuid AND summary_state IN ('draft', 'reviewed')
                    RETURNING session_id, summary_reviewed_at
                ), s AS (SELECT session_id AS id FROM t), {AUDIT_CTE}
                SELECT summary_reviewed_at FROM t""",
            {"id": session_id, "reviewer": reviewer, **audit.params()},
        )

    def unfinished(self, limit: int = 20) -> list[Row]:
        """Transcripts whose medical extraction or summary is pending or incomplete (a later run completes them)."""
        return self._db.fetch_all(
            """SELECT session_id::text AS session_id FROM call_transcripts
                WHERE deleted_at IS NULL AND (medical_state IN ('pending', 'incomplete')
                                              OR summary_state IN ('pending', 'incomplete'))
                  AND built_at < now() - interval '1 minute'
                ORDER BY built_at LIMIT %(limit)s""",
            {"limit": limit},
        )

    # --- retention, export, erasure ----------------------------------------------------------------------
    def of_appointments(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            f"""SELECT t.appointment_id, t.meeting_id, {_TRANSCRIPT_STATE},
                       (SELECT coalesce(json_agg(json_build_object('sequence', g.sequence, 'startMs', g.start_ms,
                                   'endMs', g.end_ms, 'speakerRole', g.speaker_role, 'text', g.text)
                                   ORDER BY g.sequence), '[]'::json)
                          FROM call_transcript_segments g WHERE g.session_id = t.session_id) AS segments
                  FROM call_transcripts t
                 WHERE t.appointment_id = ANY(%(ids)s) AND t.deleted_at IS NULL ORDER BY t.built_at""",
            {"ids": appointment_ids},
        )

    def older_than(self, days: int) -> list[Row]:
        return self._db.fetch_all(
            """SELECT session_id::text AS session_id, appointment_id FROM call_transcripts
                WHERE deleted_at IS NULL AND built_at < now() - make_interval(days => %(days)s)""",
            {"days": days},
        )

    def delete(self, *, session_ids: list[str], audit: AuditEntry) -> int:
        """Content gone (segments, entities, codes, summary, the session's transcript columns); the
        transcript row stays as metadata, marked deleted."""
        row = self._db.fetch_one(
            f"""WITH segs AS (DELETE FROM call_transcript_segments WHERE session_id = ANY(%(ids)s::uuid[])),
                ents AS (DELETE FROM call_medical_entities WHERE session_id = ANY(%(ids)s::uuid[])),
                codes AS (DELETE FROM call_icd10_candidates WHERE session_id = ANY(%(ids)s::uuid[])),
                t AS (
                    UPDATE call_transcripts
                       SET deleted_at = now(), summary_text = NULL, summary_state = 'off', people_heard = 0
                     WHERE session_id = ANY(%(ids)s::uuid[]) AND deleted_at IS NULL RETURNING session_id
                ), old_schema AS (
                    UPDATE video_call_sessions SET transcript = NULL, transcript_segments = NULL
                     WHERE id = ANY(%(ids)s::uuid[])
                ), s AS (SELECT NULL::uuid AS id), {AUDIT_CTE}
                SELECT (SELECT count(*) FROM t) AS n""",
            {"ids": session_ids, **audit.params()},
        )
        return int(row["n"]) if row else 0

    def sessions_of(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            """SELECT session_id::text AS session_id, appointment_id FROM call_transcripts
                WHERE appointment_id = ANY(%(ids)s) AND deleted_at IS NULL""",
            {"ids": appointment_ids},
        )
