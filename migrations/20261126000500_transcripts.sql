-- transcripts context: live transcription state on the session, the transcript's turns, and the
-- processing record of each meeting's transcript. A capture pipeline started only so the transcript
-- reaches S3 keeps no media (recordings.keep_media = false): its audio and video are deleted as soon
-- as the transcript is built and are never offered for download.
ALTER TABLE video_call_sessions
    ADD COLUMN transcription_state text NOT NULL DEFAULT 'off'
        CHECK (transcription_state IN ('off', 'waiting_for_consent', 'starting', 'on', 'interrupted', 'failed')),
    ADD COLUMN transcription_engine text,
    ADD COLUMN transcription_region text,
    ADD COLUMN transcription_last_event_ms bigint NOT NULL DEFAULT 0;

ALTER TABLE recordings
    ADD COLUMN keep_media boolean NOT NULL DEFAULT true,
    ADD COLUMN media_deleted_at timestamptz;

CREATE TABLE call_transcripts (
    session_id        uuid PRIMARY KEY REFERENCES video_call_sessions (id),
    meeting_id        text NOT NULL,
    appointment_id    text NOT NULL REFERENCES appointments (id),
    language          text,
    -- how many people were heard; Chime transcribes the two most active talkers at any moment, so
    -- with more than two some speech can be missing (partial_coverage)
    people_heard      integer NOT NULL DEFAULT 0,
    partial_coverage  boolean NOT NULL DEFAULT false,
    malformed_lines   integer NOT NULL DEFAULT 0,
    captures          integer NOT NULL DEFAULT 0,
    built_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX call_transcripts_appointment ON call_transcripts (appointment_id);
CREATE INDEX call_transcripts_built_at ON call_transcripts (built_at) WHERE deleted_at IS NULL;

-- One row per turn (consecutive results of one speaker), in time order.
CREATE TABLE call_transcript_segments (
    session_id       uuid NOT NULL REFERENCES call_transcripts (session_id) ON DELETE CASCADE,
    sequence         integer NOT NULL CHECK (sequence > 0),
    meeting_id       text NOT NULL,
    start_ms         bigint NOT NULL,
    end_ms           bigint NOT NULL,
    speaker_user_id  uuid REFERENCES users (id),
    speaker_role     text NOT NULL CHECK (speaker_role IN ('provider', 'patient', 'participant')),
    text             text NOT NULL,
    confidence       real,
    PRIMARY KEY (session_id, sequence)
);
