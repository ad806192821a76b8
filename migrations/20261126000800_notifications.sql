-- notifications context: the devices that receive push notifications (FCM), and the rings of calls.

-- One row per app installation (a client-generated id), owned by the user signed in on it now: the
-- same installation signed in as another user moves to that user. The FCM token is a credential of
-- the device: it never reaches logs, errors or the audit trail.
CREATE TABLE push_devices (
    installation_id  text PRIMARY KEY CHECK (installation_id ~ '^[A-Za-z0-9_-]{16,64}$'),
    user_id          uuid NOT NULL REFERENCES users (id),
    fcm_token        text NOT NULL CHECK (length(fcm_token) BETWEEN 1 AND 4096),
    platform         text NOT NULL CHECK (platform IN ('android', 'ios')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX push_devices_user ON push_devices (user_id);
-- Equality only (one token registered under two installations is kept once); a hash index has no
-- B-tree entry size limit for long tokens.
CREATE INDEX push_devices_token ON push_devices USING hash (fcm_token);

-- One row per (meeting, user) rung: Chime's events repeat and arrive out of order, so a ring is sent
-- once, and a cancel only after a ring. A user who joined before any ring gets a row with
-- rung = false (answered), so a late MeetingStarted rings nobody who is already in the call.
CREATE TABLE call_rings (
    meeting_id      text NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id),
    session_id      uuid REFERENCES video_call_sessions (id),
    appointment_id  text,
    caller_role     text,
    state           text NOT NULL CHECK (state IN ('ringing', 'answered', 'cancelled')),
    rung            boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    PRIMARY KEY (meeting_id, user_id)
);
