-- presence context: who is connected to which meeting, from Chime's attendee events.
-- One row per Chime attendee; a user is present while any of their attendees is 'joined', so an old
-- attendee's late "left" after a rejoin does not make the user absent.
CREATE TABLE attendee_presence (
    meeting_id        text NOT NULL,
    attendee_id       text NOT NULL,
    session_id        uuid REFERENCES video_call_sessions (id),
    user_id           uuid REFERENCES users (id),
    external_user_id  text NOT NULL,
    -- the media pipeline's own attendee (ExternalUserId aws:... / MediaPipeline...): never a person
    is_pipeline       boolean NOT NULL,
    state             text NOT NULL CHECK (state IN ('joined', 'left', 'dropped', 'deleted')),
    joined_at         timestamptz,
    left_at           timestamptz,
    network_type      text,
    last_event_ms     bigint NOT NULL,
    PRIMARY KEY (meeting_id, attendee_id)
);
CREATE INDEX attendee_presence_session ON attendee_presence (session_id);

-- Per meeting: whether a person ever joined, and since when nobody is connected (NULL while someone is).
CREATE TABLE session_presence (
    session_id      uuid PRIMARY KEY REFERENCES video_call_sessions (id),
    meeting_id      text NOT NULL,
    person_joined   boolean NOT NULL DEFAULT false,
    empty_since     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_presence_empty ON session_presence (empty_since) WHERE empty_since IS NOT NULL;

-- The reconciler checks live sessions against Chime, least recently checked first.
ALTER TABLE video_call_sessions ADD COLUMN reconciled_at timestamptz;
CREATE INDEX video_call_sessions_live_reconcile
    ON video_call_sessions (reconciled_at NULLS FIRST) WHERE status = 'active';
