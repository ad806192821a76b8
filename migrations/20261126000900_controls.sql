-- controls context: the waiting room, moderation (remove, mute, video/share off), raised hands.
--
-- The waiting room is a setting of the appointment (the provider turns it on when creating the
-- meeting); admission (waiting, admitted, denied, removed) belongs to the appointment too, so a
-- meeting recreated for the same consultation neither loses the lobby nor lets a removed person
-- back in. What each person may send (audio, video, content share) belongs to one meeting: a new
-- meeting starts unmuted.

CREATE TABLE appointment_call_settings (
    appointment_id  text PRIMARY KEY REFERENCES appointments (id),
    waiting_room    boolean NOT NULL,
    set_by          uuid REFERENCES users (id),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lobby_entries (
    appointment_id  text NOT NULL REFERENCES appointments (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    state           text NOT NULL CHECK (state IN ('waiting', 'admitted', 'denied', 'removed')),
    waiting_since   timestamptz,
    decided_by      uuid REFERENCES users (id),
    decided_at      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appointment_id, user_id)
);
CREATE INDEX lobby_entries_waiting ON lobby_entries (appointment_id, waiting_since) WHERE state = 'waiting';

-- Chime's capability values (SendReceive | Send | Receive | None); NULL = the meeting's default.
CREATE TABLE participant_controls (
    session_id      uuid NOT NULL REFERENCES video_call_sessions (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    audio           text CHECK (audio IN ('SendReceive', 'Send', 'Receive', 'None')),
    video           text CHECK (video IN ('SendReceive', 'Send', 'Receive', 'None')),
    content         text CHECK (content IN ('SendReceive', 'Send', 'Receive', 'None')),
    hand_raised_at  timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);

-- After "mute everyone": late joiners arrive with join_audio, except the person who muted.
CREATE TABLE session_controls (
    session_id      uuid PRIMARY KEY REFERENCES video_call_sessions (id),
    join_audio      text NOT NULL CHECK (join_audio IN ('SendReceive', 'Receive')),
    exempt_user_id  uuid REFERENCES users (id),
    changed_by      uuid REFERENCES users (id),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
