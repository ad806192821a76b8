"""Chat persistence: owns `chat_conversations`, `chat_messages`, `chat_attachments`, `chat_reactions`,
`chat_read_receipts`. One method = one round trip; every change writes its audit row in the same
statement (message and attachment text and file names never go into audit details).

Who sees which message (the SQL twin of videocall.chat.service.sees_message): the appointment's
provider and patient see the whole conversation (every meeting of the appointment); anyone else (a
user added to a group call) sees the messages sent in the meetings they were part of.
"""

from __future__ import annotations

from typing import Any

import psycopg

from videocall.core.audit import AUDIT_CTE, AuditEntry
from videocall.core.context import CALLER_AND_APPOINTMENT, MEETING_JOINS
from videocall.core.db import Database, Row

# Whether caller `u` may see message `m` of appointment `a` (see the module docstring).
VISIBLE = """(u.id IN (a.provider_id, a.patient_id)
              OR EXISTS (SELECT 1 FROM meeting_attendees v WHERE v.session_id = {m}.session_id AND v.user_id = u.id))"""

# SQL's copy of core.access.authorize_join (the Python rule decides; tests hold the two together).
PARTICIPANT = """(a.id IS NOT NULL AND (u.id IN (a.provider_id, a.patient_id) OR ma.added_by IS NOT NULL)
                  AND coalesce(cle.state, '') NOT IN ('removed', 'denied'))"""

_CONTEXT = f"""{CALLER_AND_APPOINTMENT}, s.id::text AS session_id, s.status AS session_status"""
# VISIBLE for the history page, where the caller is the `allowed` row x of the page statement.
_VISIBLE_TO_X = """(x.full_view_
                    OR EXISTS (SELECT 1 FROM meeting_attendees v
                                WHERE v.session_id = m.session_id AND v.user_id = x.uid_))"""


def _message_json(m: str = "m", provider: str = "a.provider_id", patient: str = "a.patient_id") -> str:
    """A message as the API shows it (without reactions); joins `ms` (its session) and `t` (its attachment)."""
    return f"""json_build_object(
        'messageId', {m}.id, 'seq', {m}.seq, 'clientMessageId', {m}.client_message_id, 'meetingId', ms.meeting_id,
        'senderId', {m}.sender_id,
        'senderRole', CASE WHEN {m}.sender_id = {provider} THEN 'provider'
                           WHEN {m}.sender_id = {patient} THEN 'patient' ELSE 'participant' END,
        'text', {m}.text, 'replyTo', {m}.reply_to, 'createdAt', {m}.created_at,
        'attachment', CASE WHEN t.id IS NULL THEN NULL ELSE json_build_object(
            'attachmentId', t.id, 'fileName', t.file_name, 'contentType', t.content_type,
            'sizeBytes', t.size_bytes) END)"""


def _message_joins(m: str = "m") -> str:
    return f"""JOIN video_call_sessions ms ON ms.id = {m}.session_id
               LEFT JOIN chat_attachments t ON t.id = {m}.attachment_id"""


def _reactions(m: str = "m", caller: str = "u.id") -> str:
    """A message's reactions, per emoji, the caller's own marked."""
    return f"""(SELECT coalesce(json_agg(json_build_object('emoji', r.emoji, 'count', r.n, 'mine', r.mine)
                                         ORDER BY r.first_at), '[]'::json)
                  FROM (SELECT rx.emoji, count(*) AS n, bool_or(rx.user_id = {caller}) AS mine,
                               min(rx.created_at) AS first_at
                          FROM chat_reactions rx WHERE rx.message_id = {m}.id GROUP BY rx.emoji) r)"""


class MessageConflict(Exception):
    """The insert hit a constraint other than idempotency: the attachment was sent meanwhile, or the
    replied-to message / attachment vanished (retention, erasure) between the read and the insert."""


class ChatRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- posting -----------------------------------------------------------------------------------
    def post_context(
        self, firebase_uid: str, meeting_id: str, *, client_message_id: str, reply_to: str | None,
        attachment_id: str | None,
    ) -> Row | None:  # fmt: skip
        """Who is posting where, the message a retry already stored, and whether replyTo / attachmentId
        may be used: the first (authorizing) round trip of a post."""
        return self._db.read_one(
            f"""SELECT {_CONTEXT}, existing.message AS existing_message,
                       (%(reply_to)s::uuid IS NULL OR EXISTS (
                           SELECT 1 FROM chat_messages r WHERE r.id = %(reply_to)s::uuid AND r.appointment_id = a.id
                              AND {VISIBLE.format(m="r")})) AS reply_ok,
                       (%(attachment_id)s::uuid IS NULL OR EXISTS (
                           SELECT 1 FROM chat_attachments f
                            WHERE f.id = %(attachment_id)s::uuid AND f.appointment_id = a.id AND f.uploaded_by = u.id
                              AND NOT EXISTS (SELECT 1 FROM chat_messages x WHERE x.attachment_id = f.id)))
                           AS attachment_ok
                  {MEETING_JOINS}
                  LEFT JOIN LATERAL (
                      SELECT {_message_json()}::jsonb || jsonb_build_object('reactions', {_reactions()}) AS message
                        FROM chat_messages m {_message_joins()}
                       WHERE m.appointment_id = a.id AND m.sender_id = u.id
                         AND m.client_message_id = %(client_message_id)s
                  ) existing ON true
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "client_message_id": client_message_id,
             "reply_to": reply_to, "attachment_id": attachment_id},
        )  # fmt: skip

    def insert_message(
        self, *, appointment_id: str, session_id: str, sender_id: str, client_message_id: str, text: str,
        reply_to: str | None, attachment_id: str | None, provider_id: str, patient_id: str, audit: AuditEntry,
    ) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """Insert idempotently: (the message, whether this call stored it). The conversation's row lock
        (the UPDATE of last_seq) is held to commit, so messages commit in seq order. A concurrent retry of
        the same clientMessageId gets the row the first one stored (ON CONFLICT DO UPDATE sees it even when
        it committed after this statement began), and its audit row is written only once."""
        try:
            row = self._db.fetch_one(
                f"""WITH conv AS (
                        INSERT INTO chat_conversations AS c (appointment_id, last_seq) VALUES (%(appointment_id)s, 1)
                        ON CONFLICT (appointment_id) DO UPDATE SET last_seq = c.last_seq + 1
                        RETURNING last_seq
                    ), m AS (
                        INSERT INTO chat_messages AS cm
                            (appointment_id, seq, session_id, sender_id, client_message_id, text, reply_to,
                             attachment_id)
                        SELECT %(appointment_id)s, conv.last_seq, %(session_id)s::uuid, %(sender_id)s::uuid,
                               %(client_message_id)s, %(text)s, %(reply_to)s::uuid, %(attachment_id)s::uuid
                          FROM conv
                        ON CONFLICT (appointment_id, sender_id, client_message_id)
                            DO UPDATE SET client_message_id = EXCLUDED.client_message_id
                        RETURNING cm.*, (cm.xmax = 0) AS inserted
                    ), s AS (SELECT %(session_id)s::uuid AS id FROM m WHERE m.inserted),
                    audited AS (
                        INSERT INTO audit_events (actor_user_id, action, outcome, appointment_id, patient_id,
                                                  session_id, meeting_id, request_id, details)
                        SELECT %(actor)s::uuid, %(action)s, %(outcome)s, %(appointment_id)s, %(patient_id)s::uuid,
                               s.id, %(meeting_id)s, %(request_id)s,
                               %(details)s::jsonb || jsonb_build_object('message_id', m.id, 'seq', m.seq)
                          FROM s CROSS JOIN m
                    )
                    SELECT {_message_json(provider="%(provider_id)s::uuid", patient="%(patient_id)s::uuid")}
                               AS message, m.inserted
                      FROM m {_message_joins()}""",
                {"appointment_id": appointment_id, "session_id": session_id, "sender_id": sender_id,
                 "client_message_id": client_message_id, "text": text, "reply_to": reply_to,
                 "attachment_id": attachment_id, "provider_id": provider_id, **audit.params(),
                 "patient_id": patient_id},
            )  # fmt: skip
        except (psycopg.errors.UniqueViolation, psycopg.errors.ForeignKeyViolation) as exc:
            raise MessageConflict(getattr(exc.diag, "constraint_name", None)) from None
        assert row is not None
        message = dict(row["message"])
        message["reactions"] = []
        return message, bool(row["inserted"])

    # --- reading -----------------------------------------------------------------------------------
    def page(
        self, firebase_uid: str, meeting_id: str, *, after: int | None, before: int | None, limit: int,
        cursor_appointment: str | None, audit_action: str, request_id: str | None,
    ) -> Row | None:  # fmt: skip
        """ONE round trip: the caller's context, the page (limit + 1 rows, to know whether there is more),
        each message's reactions, the conversation's read receipts, and the read's audit row, written only
        when the SQL participant rule allows (and the cursor belongs to this conversation)."""
        ascending = after is not None
        return self._db.read_one(
            f"""WITH ctx AS (
                    SELECT {_CONTEXT}, u.id AS uid_, a.id AS aid_, s.id AS sid_, a.provider_id AS provider_,
                           a.patient_id AS patient_,
                           u.id IN (a.provider_id, a.patient_id) AS full_view_,
                           {PARTICIPANT} AS sql_participant,
                           (%(cursor_appointment)s::text IS NULL OR %(cursor_appointment)s = a.id) AS cursor_ok
                      {MEETING_JOINS}
                     WHERE u.firebase_uid = %(uid)s
                ), allowed AS (SELECT * FROM ctx WHERE ctx.sql_participant AND ctx.cursor_ok),
                page AS (
                    -- A LATERAL scan per direction, driven by the one allowed row: an ordered index scan on
                    -- (appointment_id, seq) that stops after `limit` visible rows, whatever the conversation's size.
                    SELECT p.* FROM allowed x CROSS JOIN LATERAL (
                        SELECT m.* FROM chat_messages m
                         WHERE %(ascending)s AND m.appointment_id = x.aid_ AND m.seq > %(after)s
                           AND {_VISIBLE_TO_X}
                         ORDER BY m.seq ASC LIMIT %(limit)s) p
                    UNION ALL
                    SELECT p.* FROM allowed x CROSS JOIN LATERAL (
                        SELECT m.* FROM chat_messages m
                         WHERE NOT %(ascending)s AND m.appointment_id = x.aid_ AND m.seq < %(before)s
                           AND {_VISIBLE_TO_X}
                         ORDER BY m.seq DESC LIMIT %(limit)s) p
                ), shown AS (
                    SELECT m.seq, {_message_json(provider="x.provider_", patient="x.patient_")}::jsonb
                               || jsonb_build_object('reactions', {_reactions(caller="x.uid_")}) AS message
                      FROM page m CROSS JOIN allowed x {_message_joins()}
                ), receipts AS (
                    SELECT coalesce(json_agg(json_build_object('userId', r.user_id, 'readUpToSeq', r.last_read_seq,
                                                               'readAt', r.updated_at) ORDER BY r.updated_at),
                                    '[]'::json) AS receipts
                      FROM allowed x JOIN chat_read_receipts r ON r.appointment_id = x.aid_
                ), audited AS (
                    INSERT INTO audit_events (actor_user_id, action, outcome, appointment_id, patient_id, session_id,
                                              meeting_id, request_id, details)
                    SELECT x.uid_, %(action)s, 'allowed', x.aid_, x.patient_, x.sid_, %(meeting_id)s, %(request_id)s,
                           jsonb_build_object('messages', least((SELECT count(*) FROM page), %(limit)s - 1),
                                              'direction', CASE WHEN %(ascending)s THEN 'after' ELSE 'before' END)
                      FROM allowed x
                )
                SELECT ctx.*, (SELECT coalesce(json_agg(shown.message ORDER BY shown.seq), '[]'::json) FROM shown)
                           AS messages,
                       (SELECT receipts FROM receipts) AS receipts
                  FROM ctx""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "ascending": ascending, "after": after or 0,
             "before": before if before is not None else 2**63 - 1, "limit": limit + 1,
             "cursor_appointment": cursor_appointment, "action": audit_action, "request_id": request_id},
        )  # fmt: skip

    # --- reactions and read receipts ---------------------------------------------------------------
    def message_context(self, firebase_uid: str, meeting_id: str, message_id: str) -> Row | None:
        """The caller's context and one message of the conversation if the caller may see it."""
        return self._db.read_one(
            f"""SELECT {_CONTEXT}, m.id::text AS message_id, m.seq AS message_seq, mine.emoji AS my_emoji,
                       CASE WHEN m.id IS NULL THEN NULL ELSE {_reactions()} END AS reactions
                  {MEETING_JOINS}
                  LEFT JOIN chat_messages m ON m.id = %(message_id)s::uuid AND m.appointment_id = a.id
                        AND {VISIBLE.format(m="m")}
                  LEFT JOIN chat_reactions mine ON mine.message_id = m.id AND mine.user_id = u.id
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "message_id": message_id},
        )

    def set_reaction(self, *, message_id: str, user_id: str, emoji: str, session_id: str, audit: AuditEntry) -> None:
        self._db.execute(
            f"""WITH r AS (
                    INSERT INTO chat_reactions (message_id, user_id, emoji) VALUES (%(message_id)s::uuid,
                           %(user_id)s::uuid, %(emoji)s)
                    ON CONFLICT (message_id, user_id) DO UPDATE SET emoji = EXCLUDED.emoji, created_at = now()
                    RETURNING 1
                ), s AS (SELECT %(session_id)s::uuid AS id FROM r), {AUDIT_CTE}
                SELECT 1""",
            {"message_id": message_id, "user_id": user_id, "emoji": emoji, "session_id": session_id,
             **audit.params()},
        )  # fmt: skip

    def delete_reaction(self, *, message_id: str, user_id: str, session_id: str, audit: AuditEntry) -> bool:
        row = self._db.fetch_one(
            f"""WITH r AS (
                    DELETE FROM chat_reactions WHERE message_id = %(message_id)s::uuid AND user_id = %(user_id)s::uuid
                    RETURNING 1
                ), s AS (SELECT %(session_id)s::uuid AS id FROM r), {AUDIT_CTE}
                SELECT count(*) AS n FROM r""",
            {"message_id": message_id, "user_id": user_id, "session_id": session_id, **audit.params()},
        )
        return bool(row and row["n"])

    def mark_read(self, *, appointment_id: str, user_id: str, seq: int, session_id: str, audit: AuditEntry) -> int:
        """Monotonic: reading an older message never moves the position back. The position now."""
        row = self._db.fetch_one(
            f"""WITH r AS (
                    INSERT INTO chat_read_receipts AS c (appointment_id, user_id, last_read_seq)
                    VALUES (%(appointment_id)s, %(user_id)s::uuid, %(seq)s)
                    ON CONFLICT (appointment_id, user_id) DO UPDATE
                       SET last_read_seq = greatest(c.last_read_seq, EXCLUDED.last_read_seq), updated_at = now()
                    RETURNING c.last_read_seq
                ), s AS (SELECT %(session_id)s::uuid AS id FROM r), {AUDIT_CTE}
                SELECT last_read_seq FROM r""",
            {"appointment_id": appointment_id, "user_id": user_id, "seq": seq, "session_id": session_id,
             **audit.params()},
        )  # fmt: skip
        assert row is not None
        return int(row["last_read_seq"])

    # --- attachments -------------------------------------------------------------------------------
    def meeting_context(self, firebase_uid: str, meeting_id: str) -> Row | None:
        return self._db.read_one(
            f"""SELECT {_CONTEXT} {MEETING_JOINS} WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id},
        )

    def attachment_context(self, firebase_uid: str, meeting_id: str, attachment_id: str) -> Row | None:
        """The caller's context and the attachment if the caller may see it: its uploader, or whoever
        sees the message it was sent in."""
        return self._db.read_one(
            f"""SELECT {_CONTEXT}, t.id::text AS attachment_id, t.s3_key, t.file_name, t.content_type,
                       t.size_bytes
                  {MEETING_JOINS}
                  LEFT JOIN chat_attachments t ON t.id = %(attachment_id)s::uuid AND t.appointment_id = a.id
                        AND (t.uploaded_by = u.id OR EXISTS (
                            SELECT 1 FROM chat_messages m WHERE m.attachment_id = t.id AND {VISIBLE.format(m="m")}))
                 WHERE u.firebase_uid = %(uid)s""",
            {"uid": firebase_uid, "meeting_id": meeting_id, "attachment_id": attachment_id},
        )

    def create_attachment(
        self, *, attachment_id: str, appointment_id: str, session_id: str, uploaded_by: str, s3_key: str,
        file_name: str, content_type: str, size: int, audit: AuditEntry,
    ) -> None:  # fmt: skip
        self._db.execute(
            f"""WITH t AS (
                    INSERT INTO chat_attachments (id, appointment_id, session_id, uploaded_by, s3_key, file_name,
                                                  content_type, size_bytes)
                    VALUES (%(attachment_id)s::uuid, %(appointment_id)s, %(session_id)s::uuid, %(uploaded_by)s::uuid,
                            %(s3_key)s, %(file_name)s, %(content_type)s, %(size)s)
                    RETURNING 1
                ), s AS (SELECT %(session_id)s::uuid AS id FROM t), {AUDIT_CTE}
                SELECT 1""",
            {"attachment_id": attachment_id, "appointment_id": appointment_id, "session_id": session_id,
             "uploaded_by": uploaded_by, "s3_key": s3_key, "file_name": file_name, "content_type": content_type,
             "size": size, **audit.params()},
        )  # fmt: skip

    def audit(self, entry: AuditEntry, session_id: str | None) -> None:
        self._db.execute(
            f"WITH s AS (SELECT %(session_id)s::uuid AS id), {AUDIT_CTE} SELECT 1",
            {"session_id": session_id, **entry.params()},
        )

    # --- content: export, erasure, retention --------------------------------------------------------
    def messages_of(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            f"""SELECT m.appointment_id, {_message_json()}::jsonb
                           || jsonb_build_object('reactions', (SELECT coalesce(json_agg(json_build_object(
                                  'userId', x.user_id, 'emoji', x.emoji, 'at', x.created_at)), '[]'::json)
                                FROM chat_reactions x WHERE x.message_id = m.id)) AS message
                  FROM chat_messages m JOIN appointments a ON a.id = m.appointment_id {_message_joins()}
                 WHERE m.appointment_id = ANY(%(ids)s)
                 ORDER BY m.appointment_id, m.seq""",
            {"ids": appointment_ids},
        )

    def attachments_of(self, appointment_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            """SELECT t.id::text AS attachment_id, t.appointment_id, t.s3_key, t.file_name, t.content_type,
                      t.size_bytes, t.uploaded_by::text AS uploaded_by, t.created_at, s.meeting_id,
                      (SELECT m.id::text FROM chat_messages m WHERE m.attachment_id = t.id) AS message_id
                 FROM chat_attachments t JOIN video_call_sessions s ON s.id = t.session_id
                WHERE t.appointment_id = ANY(%(ids)s) ORDER BY t.created_at""",
            {"ids": appointment_ids},
        )

    def expired_message_counts(self, older_than_days: int) -> list[Row]:
        return self._db.fetch_all(
            """SELECT appointment_id, count(*) AS n FROM chat_messages
                WHERE created_at < now() - make_interval(days => %(days)s) GROUP BY appointment_id""",
            {"days": older_than_days},
        )

    def expired_attachments(self, older_than_days: int) -> list[Row]:
        return self._db.fetch_all(
            """SELECT id::text AS attachment_id, appointment_id FROM chat_attachments
                WHERE created_at < now() - make_interval(days => %(days)s)""",
            {"days": older_than_days},
        )

    def delete_messages(self, *, appointment_ids: list[str], older_than_days: int | None, audit: AuditEntry) -> int:
        """Delete messages (their reactions go with them); with `older_than_days`, only those older. Erasure
        (no age) also forgets the conversation's read receipts (the conversation row holds only a counter)."""
        row = self._db.fetch_one(
            f"""WITH d AS (
                    DELETE FROM chat_messages
                     WHERE appointment_id = ANY(%(ids)s)
                       AND (%(days)s::int IS NULL OR created_at < now() - make_interval(days => %(days)s::int))
                    RETURNING appointment_id
                ), receipts AS (
                    DELETE FROM chat_read_receipts WHERE %(days)s::int IS NULL AND appointment_id = ANY(%(ids)s)
                ), s AS (SELECT NULL::uuid AS id WHERE EXISTS (SELECT 1 FROM d)), {AUDIT_CTE}
                SELECT count(*) AS n FROM d""",
            {"ids": appointment_ids, "days": older_than_days, **audit.params()},
        )
        return int(row["n"]) if row else 0

    def delete_attachments(self, *, attachment_ids: list[str], audit: AuditEntry) -> int:
        row = self._db.fetch_one(
            f"""WITH d AS (DELETE FROM chat_attachments WHERE id = ANY(%(ids)s::uuid[]) RETURNING 1),
                s AS (SELECT NULL::uuid AS id WHERE EXISTS (SELECT 1 FROM d)), {AUDIT_CTE}
                SELECT count(*) AS n FROM d""",
            {"ids": attachment_ids, **audit.params()},
        )
        return int(row["n"]) if row else 0
