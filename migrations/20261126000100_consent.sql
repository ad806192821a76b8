-- consent context: the patient's consent per appointment (recording, transcription, AI processing).
-- Every change is also an audit event (consent.update) written in the same statement.
CREATE TABLE appointment_consents (
    appointment_id  text PRIMARY KEY REFERENCES appointments (id),
    recording       text NOT NULL CHECK (recording IN ('granted', 'refused')),
    transcription   text NOT NULL CHECK (transcription IN ('granted', 'refused')),
    ai_processing   text NOT NULL CHECK (ai_processing IN ('granted', 'refused')),
    -- 'patient': given in the app by the patient; 'external': gathered outside this system and
    -- recorded here by the provider (CONSENT_SOURCE=external).
    source          text NOT NULL CHECK (source IN ('patient', 'external')),
    recorded_by     uuid NOT NULL REFERENCES users (id),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
