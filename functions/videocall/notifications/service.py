"""The notifications rules: devices register their FCM token; a call rings the appointment's other
participants; the ring is cancelled when they answer or the meeting ends; the waiting room tells the
provider a patient waits and the patient that they were admitted.

What is sent when (the Chime events come through videocall.events; the lobby calls from workflows):
- chime:MeetingStarted (once per meeting: a retried create makes no new event) -> `incoming_call` to every
  device of the appointment's provider and patient except the session's creator, callerRole = the
  creator's role. A ring is sent once per (meeting, user), whatever the repeats.
- chime:AttendeeJoined of a user who was rung -> `call_cancelled` (reason answered) to all their devices.
- chime:MeetingEnded -> `call_cancelled` (reason ended) to every user still ringing.
- notify_patient_waiting -> `patient_waiting` to the provider; notify_admitted -> `admitted` to the user.

A push carries type, meetingId, appointmentId, callerRole (and a cancel's reason): never a name or
health data. Sending never fails the request or the event that caused it: failures are counted
(`Failures` cause push_send / push_error) and logged by code; tokens FCM reports unregistered are
deleted. Nothing here logs a token.

Round trips: register 1, unregister 1; MeetingStarted / AttendeeJoined / MeetingEnded 1 each (+1 when
FCM reported dead tokens); each lobby notification 1 (+1 likewise). AWS calls: Secrets Manager
GetSecretValue once per execution environment (the first send), then FCM over HTTPS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from videocall.core.db import Row
from videocall.core.errors import DeviceNotFound, InstallationInUse, UserNotRegistered
from videocall.core.observability import MetricUnit, count_failure, logger, metrics
from videocall.notifications.models import Alert, Kind, Push
from videocall.notifications.repository import NotificationRepository
from videocall.notifications.sender import PushSender

RING_SECONDS = 60  # a ring older than a minute is useless (FCM TTL, apns-expiration)
LOBBY_SECONDS = 300

# The iOS alerts: generic text, never a name (shown on a locked screen).
RING_ALERT = Alert("Incoming video consultation", "Tap to join.", sound=True, time_sensitive=True)
CANCEL_ALERTS = {"answered": Alert("Video consultation answered"), "ended": Alert("Missed video consultation")}
WAITING_ALERT = Alert("A patient is waiting", "Your video consultation's waiting room.", sound=True,
                      time_sensitive=True)  # fmt: skip
ADMITTED_ALERT = Alert("You have been admitted", "Your video consultation is starting.", sound=True,
                       time_sensitive=True)  # fmt: skip


class NotificationService:
    def __init__(
        self, repository: NotificationRepository, sender: Callable[[], PushSender], *,
        clock: Callable[[], float] = time.time, device_idle_days: int = 270, ring_days: int = 30,
    ) -> None:  # fmt: skip
        self._repository = repository
        self._device_idle_days = device_idle_days
        self._ring_days = ring_days
        self._sender = sender  # built on first use: only functions that send ever load the credential
        self._clock = clock

    @property
    def sender(self) -> PushSender:
        return self._sender()

    # --- devices (the API) ---------------------------------------------------------------------------
    def register_device(
        self, firebase_uid: str, installation_id: str, *, fcm_token: str, platform: str, request_id: str | None
    ) -> dict[str, Any]:
        row = self._repository.register(
            firebase_uid=firebase_uid, installation_id=installation_id, fcm_token=fcm_token, platform=platform,
            request_id=request_id,
        )  # fmt: skip
        if row is None or not row["known"]:
            raise UserNotRegistered()
        if row["installation_id"] is None:
            raise InstallationInUse()
        logger.info("device registered", extra={"platform": platform, "moved": row["moved"]})
        return {"installationId": row["installation_id"], "registered": True, "platform": row["platform"],
                "updatedAt": row["updated_at"].isoformat()}  # fmt: skip

    def unregister_device(self, firebase_uid: str, installation_id: str, request_id: str | None) -> dict[str, Any]:
        """Only the caller's own installation: another user's answers like a missing one."""
        row = self._repository.unregister(
            firebase_uid=firebase_uid, installation_id=installation_id, request_id=request_id
        )
        if not row["known"]:
            raise UserNotRegistered()
        if not row["deleted"]:
            raise DeviceNotFound()
        return {"installationId": installation_id, "registered": False}

    def export_user(self, user_id: str) -> list[dict[str, Any]]:
        """Right of access: the person's push registrations (the FCM token is a device credential: not exported)."""
        return [
            {"installationId": r["installation_id"], "platform": r["platform"],
             "registeredAt": r["created_at"].isoformat(), "updatedAt": r["updated_at"].isoformat()}
            for r in self._repository.registrations_of(user_id)
        ]  # fmt: skip

    def erase_users(self, user_ids: list[str]) -> int:
        """Erasure of a person: their devices go."""
        return self._repository.erase_users(user_ids) if user_ids else 0

    def prune(self, *, held: frozenset[str]) -> dict[str, int]:
        """The retention job's share: idle devices and old rings (held appointments' rings stay)."""
        return self._repository.prune(idle_days=self._device_idle_days, ring_days=self._ring_days, held=held)

    # --- the call's ring (Chime's events) ------------------------------------------------------------
    def meeting_started(self, *, meeting_id: str, appointment_id: str | None, at_ms: int) -> int:
        """Ring the appointment's other participants; the number of users rung now."""
        if at_ms and self._clock() * 1000 - at_ms > RING_SECONDS * 1000:
            logger.info("meeting started too long ago to ring", extra={"meeting_id": meeting_id})
            return 0
        rows = self._guarded(
            "ring", lambda: self._repository.ring(meeting_id=meeting_id, appointment_id=appointment_id)
        )
        self._send("incoming_call", meeting_id, rows, ttl=RING_SECONDS, alert=lambda _row: RING_ALERT,
                   collapse_id=meeting_id)  # fmt: skip
        return len({r["user_id"] for r in rows})

    def attendee_joined(self, *, meeting_id: str, attendee_id: str) -> int:
        """The user answered: stop the ring on all their devices. The number of users whose ring stopped."""
        rows = self._guarded("answer", lambda: self._repository.answer(meeting_id=meeting_id, attendee_id=attendee_id))
        self._send("call_cancelled", meeting_id, rows, ttl=RING_SECONDS, alert=lambda _row: CANCEL_ALERTS["answered"],
                   collapse_id=meeting_id, extra={"reason": "answered"})  # fmt: skip
        return len({r["user_id"] for r in rows})

    def meeting_ended(self, *, meeting_id: str) -> int:
        """Cancel every ring nobody answered. The number of users whose ring stopped."""
        rows = self._guarded("end", lambda: self._repository.end(meeting_id=meeting_id))
        self._send("call_cancelled", meeting_id, rows, ttl=RING_SECONDS, alert=lambda _row: CANCEL_ALERTS["ended"],
                   collapse_id=meeting_id, extra={"reason": "ended"})  # fmt: skip
        return len({r["user_id"] for r in rows})

    # --- the waiting room (called by videocall.workflows) ----------------------------------------------
    def notify_patient_waiting(self, *, meeting_id: str | None, appointment_id: str, provider_id: str) -> None:
        """A patient waits in the lobby: tell the provider's devices. `meeting_id` is None while the provider
        has not started the meeting (the push then has no meetingId and collapses with nothing)."""
        self._notify("patient_waiting", meeting_id, appointment_id, provider_id, WAITING_ALERT, caller_role="patient")

    def notify_admitted(self, *, meeting_id: str, appointment_id: str, user_id: str) -> None:
        """A waiting user was admitted: tell their devices."""
        self._notify("admitted", meeting_id, appointment_id, user_id, ADMITTED_ALERT, caller_role=None)

    # --- shared --------------------------------------------------------------------------------------
    def _notify(
        self, kind: Kind, meeting_id: str | None, appointment_id: str, user_id: str, alert: Alert, *,
        caller_role: str | None,
    ) -> None:  # fmt: skip
        rows = [
            {**r, "appointment_id": appointment_id, "caller_role": caller_role}
            for r in self._guarded(kind, lambda: self._repository.devices_of([user_id]))
        ]
        self._send(kind, meeting_id, rows, ttl=LOBBY_SECONDS, alert=lambda _row: alert,
                   collapse_id=f"{kind}-{meeting_id}" if meeting_id else None)  # fmt: skip

    def _guarded(self, what: str, read: Callable[[], list[Row]]) -> list[Row]:
        """A failure of the notifications' own statements never fails the event or request around them."""
        try:
            return read()
        except Exception as exc:
            logger.warning("notification step failed", extra={"step": what, "error_type": type(exc).__name__})
            count_failure("push_error")
            return []

    def _send(
        self, kind: Kind, meeting: str | None, rows: Iterable[Row], *, ttl: int, alert: Callable[[Row], Alert],
        collapse_id: str | None, extra: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """One push per device of `rows`; `collapse_id` None: nothing to collapse with."""
        pushes: list[Push] = []
        seen: set[str] = set()
        for row in rows:
            token = row.get("fcm_token")
            if not token or token in seen:  # a user without devices; one token under two installations
                continue
            seen.add(token)
            data = {"type": kind, "meetingId": meeting, "appointmentId": row.get("appointment_id"),
                    "callerRole": row.get("caller_role"), **(extra or {})}  # fmt: skip
            pushes.append(Push(
                token=token, platform=row["platform"], kind=kind,
                data={k: str(v) for k, v in data.items() if v is not None}, collapse_id=collapse_id,
                ttl_seconds=ttl, alert=alert(row), user_id=row["user_id"], installation_id=row["installation_id"],
            ))  # fmt: skip
        if not pushes:
            return
        try:
            outcomes = self.sender.send(pushes)
        except Exception as exc:  # the sender's own fault: counted, never the caller's failure
            logger.warning("push send failed", extra={"type": kind, "meeting_id": meeting,
                                                      "error_type": type(exc).__name__})  # fmt: skip
            count_failure("push_send")
            return
        sent = [o for o in outcomes if o.status == "sent"]
        failed = [o for o in outcomes if o.status == "failed"]
        dead = [
            (p.installation_id, p.token) for p, o in zip(pushes, outcomes, strict=True) if o.status == "unregistered"
        ]
        if sent:
            metrics.add_metric(name="PushesSent", unit=MetricUnit.Count, value=len(sent))
        for _ in failed:
            count_failure("push_send")
        forgotten = 0
        if dead:
            forgotten = len(self._guarded("forget", lambda: [{}] * self._repository.forget(dead)))
        logger.info("push", extra={
            "type": kind, "meeting_id": meeting, "devices": len(pushes), "sent": len(sent), "failed": len(failed),
            "unregistered": len(dead), "forgotten": forgotten,
            "codes": sorted({o.code for o in outcomes if o.code}),
        })  # fmt: skip
