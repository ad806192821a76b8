-- Users, appointments, video call sessions, attendees and the audit trail.
-- Column names of video_call_sessions are the old system's, so its reports keep working.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firebase_uid  text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('provider', 'patient', 'admin')),
    display_name  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE appointments (
    -- The app's appointment ids ("appt_123"); also the meetings' ExternalMeetingId (2-64 chars, no PII).
    id             text PRIMARY KEY CHECK (id ~ '^[-_a-zA-Z0-9]{2,64}$'),
    provider_id    uuid NOT NULL REFERENCES users (id),
    patient_id     uuid NOT NULL REFERENCES users (id),
    video_enabled  boolean NOT NULL DEFAULT true,
    scheduled_at   timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'scheduled'
                   CHECK (status IN ('scheduled', 'in_progress', 'completed', 'cancelled')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX appointments_provider_id ON appointments (provider_id);
CREATE INDEX appointments_patient_id ON appointments (patient_id);

CREATE TABLE video_call_sessions (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    appointment_id          text NOT NULL REFERENCES appointments (id),
    -- 1 for the appointment's first meeting, +1 each time one has to be recreated; with the
    -- appointment id it makes the Chime ClientRequestToken, so a retried create never makes a
    -- second meeting.
    generation              integer NOT NULL CHECK (generation > 0),
    client_request_token    text NOT NULL,
    meeting_id              text UNIQUE,
    external_meeting_id     text,
    meeting_arn             text,
    status                  text NOT NULL CHECK (status IN ('creating', 'active', 'ended', 'failed')),
    media_region            text,
    media_placement         jsonb,
    meeting_features        jsonb,
    recording_enabled       boolean NOT NULL DEFAULT false,
    recording_url           text,
    recording_completed_at  timestamptz,
    transcription_enabled   boolean NOT NULL DEFAULT false,
    transcription_language  text,
    transcript              text,
    transcript_segments     jsonb,
    -- {user_id: attendee_id}. Never JoinTokens: those are credentials and are not stored.
    attendee_tokens         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by              uuid REFERENCES users (id),
    ended_by                uuid REFERENCES users (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    ended_at                timestamptz,
    error_message           text,
    error_occurred_at       timestamptz,
    UNIQUE (appointment_id, generation),
    CHECK (status <> 'active' OR meeting_id IS NOT NULL)
);
-- At most one live meeting per appointment, whatever the number of simultaneous creates.
CREATE UNIQUE INDEX video_call_sessions_one_live_per_appointment
    ON video_call_sessions (appointment_id) WHERE status IN ('creating', 'active');
CREATE INDEX idx_video_call_sessions_external_meeting_id ON video_call_sessions (external_meeting_id);
CREATE INDEX idx_video_call_sessions_transcription_enabled
    ON video_call_sessions (transcription_enabled) WHERE transcription_enabled = true;

-- One row per user per meeting: who was given an attendee, and who added them.
CREATE TABLE meeting_attendees (
    session_id        uuid NOT NULL REFERENCES video_call_sessions (id),
    user_id           uuid NOT NULL REFERENCES users (id),
    attendee_id       text NOT NULL,
    external_user_id  text NOT NULL,
    added_by          uuid REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX meeting_attendees_user_id ON meeting_attendees (user_id);

-- The HIPAA access trail: who did what to which patient's call, allowed or denied. Append-only.
CREATE TABLE audit_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    actor_user_id   uuid REFERENCES users (id),
    action          text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    appointment_id  text,
    patient_id      uuid,
    session_id      uuid,
    meeting_id      text,
    request_id      text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_patient_time ON audit_events (patient_id, occurred_at);
CREATE INDEX audit_events_actor_time ON audit_events (actor_user_id, occurred_at);
CREATE INDEX audit_events_meeting ON audit_events (meeting_id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
