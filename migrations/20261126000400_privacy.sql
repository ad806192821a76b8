-- privacy context: legal holds, and the marks erasure leaves on the rows the audit trail refers to.
CREATE TABLE legal_holds (
    appointment_id  text PRIMARY KEY REFERENCES appointments (id),
    placed_by       uuid NOT NULL REFERENCES users (id),
    placed_at       timestamptz NOT NULL DEFAULT now(),
    -- a reference (case number), never clinical detail
    reference       text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200)
);

ALTER TABLE users ADD COLUMN erased_at timestamptz;
ALTER TABLE appointments ADD COLUMN erased_at timestamptz;
