"""Notifications persistence: owns `push_devices` and `call_rings`. One round trip per method.

Reads `users`, `appointments`, `video_call_sessions` and `meeting_attendees` (who is calling whom;
which user an attendee is), never writes them. A device registration and its removal carry their audit
row in the same statement (device.register / device.unregister: who, which platform; never the token).
"""

from __future__ import annotations

from videocall.core.db import Database, Row

# The columns a push needs, for the devices `d` of the users a statement picked (LEFT JOIN: a user with
# no device still comes back once, with NULL token, so callers can count users).
_DEVICE_COLUMNS = "d.installation_id, d.fcm_token, d.platform"


def _device_audit(details: str) -> str:
    """The audit row of a device change (only when something changed); the actor is the caller the
    statement itself resolved (`u`). `details`: an SQL jsonb expression (ids and codes, never the token)."""
    return f"""
    audited AS (
        INSERT INTO audit_events (actor_user_id, action, outcome, request_id, details)
        SELECT u.id, %(action)s, 'allowed', %(request_id)s, {details} FROM u WHERE EXISTS (SELECT 1 FROM changed)
    )"""


_REGISTER_AUDIT = _device_audit(
    "jsonb_build_object('platform', %(platform)s::text, 'moved', (SELECT moved FROM moved))"
)
_UNREGISTER_AUDIT = _device_audit("'{}'::jsonb")


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- devices -----------------------------------------------------------------------------------
    def register(
        self, *, firebase_uid: str, installation_id: str, fcm_token: str, platform: str, request_id: str | None
    ) -> Row | None:
        """Register or refresh the installation for the caller; the same token under another installation
        goes (one device, one row). An installation another user holds moves to the caller only with the
        device's current FCM token (proof of holding the device: a shared phone signed in again), never on
        its id alone. `known`: the caller is registered; no `installation_id`: refused (held by another)."""
        return self._db.fetch_one(
            f"""WITH u AS (
                    SELECT id FROM users WHERE firebase_uid = %(uid)s AND erased_at IS NULL
                ), before AS (
                    SELECT user_id, fcm_token FROM push_devices WHERE installation_id = %(installation_id)s
                ), allowed AS (
                    SELECT u.id FROM u WHERE NOT EXISTS (
                        SELECT 1 FROM before b WHERE b.user_id <> u.id AND b.fcm_token <> %(token)s)
                ), duplicate AS (
                    DELETE FROM push_devices WHERE fcm_token = %(token)s AND installation_id <> %(installation_id)s
                       AND EXISTS (SELECT 1 FROM allowed)
                ), changed AS (
                    INSERT INTO push_devices AS d (installation_id, user_id, fcm_token, platform)
                    SELECT %(installation_id)s, u.id, %(token)s, %(platform)s FROM allowed u
                    ON CONFLICT (installation_id) DO UPDATE
                       SET user_id = EXCLUDED.user_id, fcm_token = EXCLUDED.fcm_token,
                           platform = EXCLUDED.platform, updated_at = now()
                    RETURNING d.installation_id, d.platform, d.updated_at
                ), moved AS (
                    SELECT coalesce((SELECT user_id FROM before) <> (SELECT id FROM u), false) AS moved
                ), {_REGISTER_AUDIT}
                SELECT EXISTS (SELECT 1 FROM u) AS known, c.installation_id, c.platform, c.updated_at,
                       (SELECT moved FROM moved) AS moved
                  FROM (SELECT 1) one LEFT JOIN changed c ON true""",
            {
                "uid": firebase_uid, "installation_id": installation_id, "token": fcm_token, "platform": platform,
                "action": "device.register", "request_id": request_id,
            },
        )  # fmt: skip

    def unregister(self, *, firebase_uid: str, installation_id: str, request_id: str | None) -> Row:
        """Remove the caller's own installation. `known`: the caller is a registered user; `deleted`: it was theirs."""
        row = self._db.fetch_one(
            f"""WITH u AS (
                    SELECT id FROM users WHERE firebase_uid = %(uid)s AND erased_at IS NULL
                ), changed AS (
                    DELETE FROM push_devices
                     WHERE installation_id = %(installation_id)s AND user_id = (SELECT id FROM u)
                    RETURNING platform
                ), {_UNREGISTER_AUDIT}
                SELECT EXISTS (SELECT 1 FROM u) AS known, EXISTS (SELECT 1 FROM changed) AS deleted""",
            {
                "uid": firebase_uid, "installation_id": installation_id, "action": "device.unregister",
                "request_id": request_id,
            },
        )  # fmt: skip
        assert row is not None
        return row

    def devices_of(self, user_ids: list[str]) -> list[Row]:
        return self._db.fetch_all(
            f"""SELECT d.user_id::text AS user_id, {_DEVICE_COLUMNS}
                  FROM push_devices d WHERE d.user_id = ANY(%(ids)s::uuid[])""",
            {"ids": user_ids},
        )

    def registrations_of(self, user_id: str) -> list[Row]:
        """A person's devices for their export: what identifies the installation, never the FCM token."""
        return self._db.fetch_all(
            """SELECT installation_id, platform, created_at, updated_at FROM push_devices
                WHERE user_id = %(id)s::uuid ORDER BY created_at""",
            {"id": user_id},
        )

    def forget(self, dead: list[tuple[str, str]]) -> int:
        """Delete devices whose token FCM reported unregistered: (installation id, token) pairs, so a device
        that registered a new token meanwhile keeps it."""
        return self._db.execute(
            """DELETE FROM push_devices d
                USING unnest(%(ids)s::text[], %(tokens)s::text[]) AS x(installation_id, token)
                WHERE d.installation_id = x.installation_id AND d.fcm_token = x.token""",
            {"ids": [i for i, _ in dead], "tokens": [t for _, t in dead]},
        )

    def erase_users(self, user_ids: list[str]) -> int:
        """Erasure: the users' devices go (personal data; the rings stay as call metadata, like attendees)."""
        return self._db.execute("DELETE FROM push_devices WHERE user_id = ANY(%(ids)s::uuid[])", {"ids": user_ids})

    def prune(self, *, idle_days: int, ring_days: int, held: frozenset[str]) -> dict[str, int]:
        """Retention: devices not registered again for `idle_days` (the app refreshes its registration
        when FCM rotates the token; FCM refuses a token idle for 270 days), and rings older than
        `ring_days`, except those of appointments under a legal hold."""
        row = self._db.fetch_one(
            """WITH devices AS (
                   DELETE FROM push_devices WHERE updated_at < now() - make_interval(days => %(idle)s) RETURNING 1
               ), rings AS (
                   DELETE FROM call_rings
                    WHERE created_at < now() - make_interval(days => %(rings)s)
                      AND (appointment_id IS NULL OR NOT appointment_id = ANY(%(held)s))
                   RETURNING 1
               )
               SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM rings) AS rings""",
            {"idle": idle_days, "rings": ring_days, "held": sorted(held)},
        )
        assert row is not None
        return {"push_devices_idle": int(row["devices"]), "call_rings": int(row["rings"])}

    # --- rings -------------------------------------------------------------------------------------
    def ring(self, *, meeting_id: str, appointment_id: str | None) -> list[Row]:
        """chime:MeetingStarted: ring the appointment's provider and patient except the session's creator,
        once per (meeting, user). The session is the one with this meeting, or (the event can arrive before
        the create recorded the meeting) the appointment's session still being created. Nobody is rung for a
        session that ended or failed, or an erased appointment. One row per device of each user rung now
        (a user without devices: one row, NULL token)."""
        return self._db.fetch_all(
            f"""WITH sess AS (
                    SELECT s.id, s.appointment_id, s.created_by, s.status
                      FROM video_call_sessions s
                     WHERE s.meeting_id = %(meeting_id)s
                        OR (s.meeting_id IS NULL AND s.status = 'creating' AND s.appointment_id = %(appointment_id)s)
                     ORDER BY s.meeting_id IS NULL LIMIT 1
                ), live AS (
                    SELECT sess.id, sess.appointment_id, sess.created_by, a.provider_id, a.patient_id,
                           creator.role AS caller_role
                      FROM sess JOIN appointments a ON a.id = sess.appointment_id
                      LEFT JOIN users creator ON creator.id = sess.created_by
                     WHERE sess.status IN ('creating', 'active') AND a.erased_at IS NULL
                ), rung AS (
                    INSERT INTO call_rings (meeting_id, user_id, session_id, appointment_id, caller_role, state, rung)
                    SELECT DISTINCT %(meeting_id)s, t.user_id, live.id, live.appointment_id, live.caller_role,
                           'ringing', true
                      FROM live CROSS JOIN LATERAL (VALUES (live.provider_id), (live.patient_id)) AS t(user_id)
                     WHERE t.user_id IS DISTINCT FROM live.created_by
                    ON CONFLICT (meeting_id, user_id) DO NOTHING
                    RETURNING user_id, appointment_id, caller_role
                )
                SELECT r.user_id::text AS user_id, r.appointment_id, r.caller_role, {_DEVICE_COLUMNS}
                  FROM rung r LEFT JOIN push_devices d ON d.user_id = r.user_id""",
            {"meeting_id": meeting_id, "appointment_id": appointment_id},
        )

    def answer(self, *, meeting_id: str, attendee_id: str) -> list[Row]:
        """chime:AttendeeJoined: the attendee's user answered. A ring still ringing becomes answered and its
        user's devices come back (to cancel it on every one); with no ring yet, an answered row without a
        ring is left, so a late MeetingStarted rings nobody already in the call. Repeats change nothing."""
        return self._db.fetch_all(
            f"""WITH who AS (
                    SELECT ma.user_id, s.id AS session_id, s.appointment_id
                      FROM video_call_sessions s JOIN meeting_attendees ma ON ma.session_id = s.id
                     WHERE s.meeting_id = %(meeting_id)s AND ma.attendee_id = %(attendee_id)s
                ), answered AS (
                    INSERT INTO call_rings AS r (meeting_id, user_id, session_id, appointment_id, state, rung, ended_at)
                    SELECT %(meeting_id)s, who.user_id, who.session_id, who.appointment_id, 'answered', false, now()
                      FROM who
                    ON CONFLICT (meeting_id, user_id) DO UPDATE SET state = 'answered', ended_at = now()
                     WHERE r.state = 'ringing'
                    RETURNING r.user_id, r.appointment_id, r.caller_role, r.rung
                )
                SELECT r.user_id::text AS user_id, r.appointment_id, r.caller_role, {_DEVICE_COLUMNS}
                  FROM answered r LEFT JOIN push_devices d ON d.user_id = r.user_id
                 WHERE r.rung""",
            {"meeting_id": meeting_id, "attendee_id": attendee_id},
        )

    def end(self, *, meeting_id: str) -> list[Row]:
        """chime:MeetingEnded: every ring still ringing is cancelled; their users' devices come back."""
        return self._db.fetch_all(
            f"""WITH ended AS (
                    UPDATE call_rings SET state = 'cancelled', ended_at = now()
                     WHERE meeting_id = %(meeting_id)s AND state = 'ringing'
                    RETURNING user_id, appointment_id, caller_role
                )
                SELECT r.user_id::text AS user_id, r.appointment_id, r.caller_role, {_DEVICE_COLUMNS}
                  FROM ended r LEFT JOIN push_devices d ON d.user_id = r.user_id""",
            {"meeting_id": meeting_id},
        )
