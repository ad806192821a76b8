-- recordings context: one row per capture (start..stop), one row per artifact the concatenation wrote.
-- The session's recording_state / recording_url / recording_completed_at (old schema columns plus
-- one) are kept by the recordings context in the same statements, so every app can show "recording".
ALTER TABLE video_call_sessions
    ADD COLUMN recording_state text NOT NULL DEFAULT 'off'
        CHECK (recording_state IN ('off', 'waiting_for_consent', 'starting', 'on', 'interrupted'));

CREATE TABLE recordings (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id                  uuid NOT NULL REFERENCES video_call_sessions (id),
    meeting_id                  text NOT NULL,
    appointment_id              text NOT NULL REFERENCES appointments (id),
    sequence                    integer NOT NULL CHECK (sequence > 0),
    -- <meeting id>-r<sequence>: one ClientRequestToken per capture pipeline; a retried start reuses it.
    client_request_token        text NOT NULL UNIQUE,
    s3_prefix                   text NOT NULL,
    capture_pipeline_id         text UNIQUE,
    capture_pipeline_arn        text,
    concatenation_pipeline_id   text UNIQUE,
    concatenation_pipeline_arn  text,
    state                       text NOT NULL CHECK (state IN
                                    ('starting', 'recording', 'interrupted', 'processing', 'completed',
                                     'failed', 'deleted')),
    started_by                  uuid REFERENCES users (id),
    started_at                  timestamptz NOT NULL DEFAULT now(),
    stopped_by                  uuid REFERENCES users (id),
    stopped_at                  timestamptz,
    stop_reason                 text,
    completed_at                timestamptz,
    deleted_at                  timestamptz,
    error_message               text,
    error_occurred_at           timestamptz,
    -- The newest pipeline event applied (epoch ms): an older event never undoes a newer one.
    last_event_ms               bigint NOT NULL DEFAULT 0,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, sequence)
);
-- At most one running capture per meeting (Chime allows one capture pipeline per meeting).
CREATE UNIQUE INDEX recordings_one_running_per_session
    ON recordings (session_id) WHERE state IN ('starting', 'recording', 'interrupted');
CREATE INDEX recordings_appointment ON recordings (appointment_id);
CREATE INDEX recordings_unfinished ON recordings (updated_at) WHERE state IN ('starting', 'processing');
CREATE INDEX recordings_completed_at ON recordings (completed_at) WHERE state = 'completed';

CREATE TABLE recording_artifacts (
    recording_id  uuid NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    s3_key        text NOT NULL,
    -- the concatenation's folder: audio, video, content, composited-video, transcription-messages,
    -- meeting-events, data-channel
    kind          text NOT NULL,
    size_bytes    bigint NOT NULL,
    duration_ms   bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recording_id, s3_key)
);

-- Chime events already applied (EventBridge delivers at least once): the id of each, kept a week.
CREATE TABLE chime_events_seen (
    event_id     text PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chime_events_seen_received_at ON chime_events_seen (received_at);
