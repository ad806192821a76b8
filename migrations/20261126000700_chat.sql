-- chat context: the in-call chat's durable history. The conversation belongs to the APPOINTMENT, not
-- to one Chime meeting: a meeting recreated for the same appointment continues it; each message
-- remembers the session (meeting) it was sent in, which is what a user added to a group call may see.
--
-- Order: `seq` is a per-conversation sequence number taken from chat_conversations.last_seq by the
-- statement that inserts the message (UPDATE ... RETURNING, a row lock held to commit), so two
-- messages of one conversation commit in seq order: a reader polling `seq > x` never skips one that
-- commits later with a lower number (a bigserial id gives no such guarantee).

CREATE TABLE chat_conversations (
    appointment_id  text PRIMARY KEY REFERENCES appointments (id),
    last_seq        bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Files uploaded with a presigned POST into the attachments bucket, under the appointment's prefix.
-- file_name is patient data (never logged); the object key carries ids only.
CREATE TABLE chat_attachments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    appointment_id  text NOT NULL REFERENCES appointments (id),
    session_id      uuid NOT NULL REFERENCES video_call_sessions (id),
    uploaded_by     uuid NOT NULL REFERENCES users (id),
    s3_key          text NOT NULL UNIQUE,
    file_name       text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    content_type    text NOT NULL,
    size_bytes      bigint NOT NULL CHECK (size_bytes > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_attachments_appointment ON chat_attachments (appointment_id);
CREATE INDEX chat_attachments_created_at ON chat_attachments (created_at);

CREATE TABLE chat_messages (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    appointment_id     text NOT NULL REFERENCES chat_conversations (appointment_id),
    seq                bigint NOT NULL CHECK (seq > 0),
    session_id         uuid NOT NULL REFERENCES video_call_sessions (id),
    sender_id          uuid NOT NULL REFERENCES users (id),
    client_message_id  text NOT NULL CHECK (client_message_id ~ '^[-_a-zA-Z0-9]{1,64}$'),
    -- at most 1,500 bytes of UTF-8 (the API checks it; so a message fits one Chime data message)
    text               text NOT NULL CHECK (octet_length(text) <= 1500),
    reply_to           uuid REFERENCES chat_messages (id) ON DELETE SET NULL,
    attachment_id      uuid REFERENCES chat_attachments (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    -- a retried post (same sender, same clientMessageId) returns the stored message, never a second one
    UNIQUE (appointment_id, sender_id, client_message_id)
);
-- The keyset: history pages, polls (seq > x) and scrolling back (seq < x) are index scans on this.
CREATE UNIQUE INDEX chat_messages_conversation_seq ON chat_messages (appointment_id, seq);
-- An attachment is sent in one message (its visibility is that message's).
CREATE UNIQUE INDEX chat_messages_attachment ON chat_messages (attachment_id) WHERE attachment_id IS NOT NULL;
CREATE INDEX chat_messages_created_at ON chat_messages (created_at);
CREATE INDEX chat_messages_reply_to ON chat_messages (reply_to) WHERE reply_to IS NOT NULL;

-- One reaction (from a fixed set) per user per message.
CREATE TABLE chat_reactions (
    message_id  uuid NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id),
    emoji       text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 16),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);

-- Each participant's read-up-to position in the conversation (monotonic).
CREATE TABLE chat_read_receipts (
    appointment_id  text NOT NULL REFERENCES chat_conversations (appointment_id),
    user_id         uuid NOT NULL REFERENCES users (id),
    last_read_seq   bigint NOT NULL CHECK (last_read_seq > 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, user_id)
);
