-- transcripts context: the clinical record built from a transcript: medical entities and ICD-10
-- candidates (Comprehend Medical, with the patient's AI-processing consent), and a draft summary.
ALTER TABLE call_transcripts
    ADD COLUMN medical_state text NOT NULL DEFAULT 'pending'
        CHECK (medical_state IN ('pending', 'complete', 'incomplete', 'skipped')),
    ADD COLUMN medical_reason text,
    ADD COLUMN medical_calls integer NOT NULL DEFAULT 0,
    ADD COLUMN medical_completed_at timestamptz,
    ADD COLUMN summary_state text NOT NULL DEFAULT 'off'
        CHECK (summary_state IN ('off', 'pending', 'draft', 'reviewed', 'incomplete', 'skipped')),
    ADD COLUMN summary_reason text,
    ADD COLUMN summary_text text,
    ADD COLUMN summary_model text,
    ADD COLUMN summary_created_at timestamptz,
    ADD COLUMN summary_reviewed_by uuid REFERENCES users (id),
    ADD COLUMN summary_reviewed_at timestamptz;
CREATE INDEX call_transcripts_unfinished ON call_transcripts (built_at)
    WHERE medical_state IN ('pending', 'incomplete') OR summary_state IN ('pending', 'incomplete');

CREATE TABLE call_medical_entities (
    session_id        uuid NOT NULL REFERENCES call_transcripts (session_id) ON DELETE CASCADE,
    ordinal           integer NOT NULL,
    segment_sequence  integer NOT NULL,
    category          text NOT NULL,
    type              text NOT NULL,
    text              text NOT NULL,
    score             real NOT NULL,
    traits            text[] NOT NULL DEFAULT '{}',
    begin_offset      integer NOT NULL,
    end_offset        integer NOT NULL,
    PRIMARY KEY (session_id, ordinal)
);

-- Documentation candidates for the clinician to review: never a diagnosis.
CREATE TABLE call_icd10_candidates (
    session_id        uuid NOT NULL REFERENCES call_transcripts (session_id) ON DELETE CASCADE,
    ordinal           integer NOT NULL,
    segment_sequence  integer NOT NULL,
    code              text NOT NULL,
    description       text NOT NULL,
    score             real NOT NULL,
    text              text NOT NULL,
    begin_offset      integer NOT NULL,
    end_offset        integer NOT NULL,
    PRIMARY KEY (session_id, ordinal)
);
