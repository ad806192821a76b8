-- feedback context: the post-call quality survey, one answer per person per meeting (a second
-- answer replaces the first). The comment is free text a patient wrote: patient data.
CREATE TABLE call_feedback (
    session_id   uuid NOT NULL REFERENCES video_call_sessions (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    rating       smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    issues       text[] NOT NULL DEFAULT '{}',
    comment      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);
