"""The controls rules: the appointment's provider and the provider-role staff the provider added run
the call (remove, mute, video and share off, the lobby); any participant raises a hand and sees who
is in the call. Patients never moderate (403 not_a_clinical_controller); outsiders get the meeting's
404. Nobody moderates the appointment's provider but the provider.

Budget per action: the context read (caller, meeting, the person acted on) is one round trip; the
change with its audit row is one more; Chime calls as listed.
- remove:   DB context, Chime DeleteAttendee (if they have an attendee), DB admission+audit  (2 DB)
- PATCH:    DB context, Chime UpdateAttendeeCapabilities (if joined), DB store+audit        (2 DB)
- mute-all: DB context+people, Chime BatchUpdateAttendeeCapabilitiesExcept (+1 Update per
            person whose video or share is off: the batch call sets all three), DB store+audit (2 DB)
- lobby, participants: DB context+people, DB audit                                          (2 DB)
- decide:   DB context, DB admission+audit                                                    (2 DB)
- hand:     DB context, DB store+audit                                                        (2 DB)
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from videocall.controls.admission import OFF, Capabilities, MustWait, stored_capabilities
from videocall.controls.repository import ControlsRepository
from videocall.core.access import Appointment, Caller
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate
from videocall.core.db import Row
from videocall.core.errors import DomainError, MeetingEnded
from videocall.core.observability import MetricUnit, logger, metrics
from videocall.meetings.chime import ChimeGateway, ChimeMeetingGone


class ParticipantNotInMeeting(DomainError):
    status = 404
    code = "participant_not_in_meeting"
    message = "This user is not a participant of the meeting."


class CannotModerateProvider(DomainError):
    status = 403
    code = "cannot_moderate_provider"
    message = "Only the appointment's provider changes what the provider may do."


class CannotRemoveYourself(DomainError):
    status = 409
    code = "cannot_remove_yourself"
    message = "Leave the call instead; to close it for everyone, end the meeting."


@dataclass(frozen=True)
class Waiting:
    """A patient waits in the lobby: 202, no JoinToken."""

    appointment_id: str
    meeting_id: str | None
    retry_after_seconds: int
    newly_waiting: bool
    provider_id: str


@dataclass(frozen=True)
class LobbyDecision:
    meeting_id: str
    user_id: str
    decision: str
    was_waiting: bool
    appointment_id: str


def _target_uuid(user_id: str) -> str | None:
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        return None


class ControlsService:
    def __init__(
        self, controls: ControlsRepository, chime: ChimeGateway, gate: AccessGate, *, lobby_poll_seconds: int = 5
    ) -> None:
        self._controls = controls
        self._chime = chime
        self._gate = gate
        self._poll = lobby_poll_seconds

    # --- the waiting room -------------------------------------------------------------------------
    def wait(self, waiting: MustWait, request_id: str | None) -> Waiting:
        """The patient the door turned away (videocall.controls.admission) enters the lobby."""
        appointment = waiting.appointment
        newly = self._controls.enter_lobby(
            appointment_id=appointment.id, session_id=waiting.session_id, user_id=waiting.caller.user_id,
            audit=AuditEntry(waiting.caller.user_id, "lobby.wait", appointment.id, appointment.patient_id,
                             waiting.meeting_id, request_id),
        )  # fmt: skip
        if newly:
            metrics.add_metric(name="LobbyWaits", unit=MetricUnit.Count, value=1)
        return Waiting(appointment.id, waiting.meeting_id, self._poll, newly, appointment.provider_id)

    def set_waiting_room(
        self, caller: Caller, appointment: Appointment, waiting_room: bool, meeting_id: str | None,
        request_id: str | None,
    ) -> None:  # fmt: skip
        """On create, by the appointment's provider (checked by the door before anything was made)."""
        self._controls.set_waiting_room(
            appointment_id=appointment.id, waiting_room=waiting_room, set_by=caller.user_id,
            audit=AuditEntry(caller.user_id, "lobby.configure", appointment.id, appointment.patient_id, meeting_id,
                             request_id, details={"waiting_room": waiting_room}),
        )  # fmt: skip

    def lobby(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> list[dict[str, Any]]:
        row = self._controls.people_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.clinical_control(
            row, meeting_id=meeting_id, action="lobby.view", request_id=request_id
        )
        assert row is not None
        self._controls.audit(
            AuditEntry(caller.user_id, "lobby.view", appointment.id, appointment.patient_id, meeting_id, request_id),
            row["session_id"],
        )
        waiting = [p for p in row["people"] if p["lobby_state"] == "waiting"]
        waiting.sort(key=lambda p: p["waiting_since"] or "")
        return [{"userId": p["user_id"], "role": p["role"], "waitingSince": p["waiting_since"]} for p in waiting]

    def decide(
        self, firebase_uid: str, meeting_id: str, user_id: str, decision: str, request_id: str | None
    ) -> LobbyDecision:
        caller, appointment, row = self._moderate(firebase_uid, meeting_id, user_id, "lobby.decide", request_id)
        previous = self._controls.set_admission(
            appointment_id=appointment.id, session_id=row["session_id"], user_id=row["target_id"],
            state="admitted" if decision == "admit" else "denied", decided_by=caller.user_id,
            audit=AuditEntry(caller.user_id, "lobby.decide", appointment.id, appointment.patient_id, meeting_id,
                             request_id, details={"user_id": row["target_id"], "decision": decision}),
        )  # fmt: skip
        return LobbyDecision(meeting_id, row["target_id"], decision, previous == "waiting", appointment.id)

    # --- moderation -------------------------------------------------------------------------------
    def remove(self, firebase_uid: str, meeting_id: str, user_id: str, request_id: str | None) -> dict[str, Any]:
        caller, appointment, row = self._moderate(firebase_uid, meeting_id, user_id, "participant.remove",
                                                  request_id, live=True)  # fmt: skip
        if row["target_id"] == caller.user_id:
            raise CannotRemoveYourself()
        if row["target_attendee_id"]:
            # Chime disconnects them; its AttendeeDeleted event updates presence.
            self._chime.delete_attendee(meeting_id, row["target_attendee_id"])
        self._controls.set_admission(
            appointment_id=appointment.id, session_id=row["session_id"], user_id=row["target_id"], state="removed",
            decided_by=caller.user_id,
            audit=AuditEntry(caller.user_id, "participant.remove", appointment.id, appointment.patient_id,
                             meeting_id, request_id, details={"user_id": row["target_id"]}),
        )  # fmt: skip
        metrics.add_metric(name="ParticipantsRemoved", unit=MetricUnit.Count, value=1)
        logger.info("participant removed", extra={"meeting_id": meeting_id, "session_id": row["session_id"]})
        return {"meetingId": meeting_id, "userId": row["target_id"], "presence": "removed"}

    def set_allowed(
        self, firebase_uid: str, meeting_id: str, user_id: str, change: dict[str, str], request_id: str | None
    ) -> dict[str, Any]:
        caller, appointment, row = self._moderate(firebase_uid, meeting_id, user_id, "participant.update",
                                                  request_id, live=True)  # fmt: skip
        # Chime wants all three in every update: merge the change into what is stored.
        capabilities = stored_capabilities(row, row["target_id"], prefix="target_").merged(change)
        if row["target_attendee_id"]:
            # Gone (they left and Chime deleted the attendee): what is stored applies when they rejoin.
            with contextlib.suppress(ChimeMeetingGone):
                self._chime.update_capabilities(meeting_id, row["target_attendee_id"], capabilities.chime())
        self._controls.set_capabilities(
            session_id=row["session_id"], user_id=row["target_id"],
            capabilities={"audio": capabilities.audio, "video": capabilities.video, "content": capabilities.content},
            audit=AuditEntry(caller.user_id, "participant.update", appointment.id, appointment.patient_id,
                             meeting_id, request_id, details={"user_id": row["target_id"], **change}),
        )  # fmt: skip
        return {"meetingId": meeting_id, "userId": row["target_id"], "allowed": capabilities.body()}

    def mute_all(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> dict[str, Any]:
        """Mute everyone but the caller, now and for whoever joins later."""
        row = self._controls.people_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.clinical_control(
            row, meeting_id=meeting_id, action="participant.mute_all", request_id=request_id
        )
        assert row is not None
        if row["session_status"] != "active":
            raise MeetingEnded()
        # Everyone but the caller and the appointment's provider (whom only the provider moderates).
        exempt = {caller.user_id, appointment.provider_id}
        others = [p for p in row["people"] if p["user_id"] not in exempt and p["attendee_id"]]
        muted: dict[str, Capabilities] = {}
        for person in others:
            muted[person["attendee_id"]] = Capabilities(
                audio=OFF, video=person["video"] or "SendReceive", content=person["content"] or "SendReceive"
            )
        kept = [p["attendee_id"] for p in row["people"] if p["user_id"] in exempt and p["attendee_id"]]
        # Stored first: whoever joins from now on reads "muted" and is created muted; whoever joined before
        # has an attendee the Chime call below reaches. (A join that read the old default and creates its
        # attendee after the Chime call is the window left: milliseconds; mute-all again closes it.)
        self._controls.mute_all(
            session_id=row["session_id"], exempt_user_id=caller.user_id, user_ids=[p["user_id"] for p in others],
            audit=AuditEntry(caller.user_id, "participant.mute_all", appointment.id, appointment.patient_id,
                             meeting_id, request_id, details={"muted": len(others)}),
        )  # fmt: skip
        try:
            self._apply_mute_all(meeting_id, kept, muted)
        except ChimeMeetingGone:
            raise MeetingEnded() from None  # Chime ended it (the MeetingEnded event will close the session)
        return {"meetingId": meeting_id, "muted": len(others)}

    def _apply_mute_all(self, meeting_id: str, kept: list[str], muted: dict[str, Capabilities]) -> None:
        plain = Capabilities(audio=OFF)
        if kept:
            # One call for everyone; it sets all three, so those whose video or share is off get theirs back.
            self._chime.update_capabilities_except(meeting_id, kept, plain.chime())
            fixups = {a: c for a, c in muted.items() if c != plain}
        else:
            fixups = muted  # nobody to exclude has an attendee: one call per person
        for attendee_id, capabilities in fixups.items():
            try:
                self._chime.update_capabilities(meeting_id, attendee_id, capabilities.chime())
            except ChimeMeetingGone:
                continue

    # --- any participant --------------------------------------------------------------------------
    def hand(self, firebase_uid: str, meeting_id: str, raised: bool, request_id: str | None) -> dict[str, Any]:
        row = self._controls.target_context(firebase_uid, meeting_id, None)
        caller, appointment = self._participant(row, meeting_id, "participant.hand", request_id)
        assert row is not None
        if row["session_status"] != "active":
            raise MeetingEnded()
        saved = self._controls.set_hand(
            session_id=row["session_id"], user_id=caller.user_id, raised=raised,
            audit=AuditEntry(caller.user_id, "participant.hand", appointment.id, appointment.patient_id, meeting_id,
                             request_id, details={"raised": raised}),
        )  # fmt: skip
        at = saved["hand_raised_at"]
        return {"meetingId": meeting_id, "handRaised": at is not None, "handRaisedAt": at.isoformat() if at else None}

    def participants(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> list[dict[str, Any]]:
        row = self._controls.people_context(firebase_uid, meeting_id)
        caller, appointment = self._participant(row, meeting_id, "participant.list", request_id)
        assert row is not None
        self._controls.audit(
            AuditEntry(caller.user_id, "participant.list", appointment.id, appointment.patient_id, meeting_id,
                       request_id),
            row["session_id"],
        )  # fmt: skip
        return [_participant_view(p, row, appointment) for p in row["people"]]

    # --- shared -----------------------------------------------------------------------------------
    def _participant(
        self, row: Row | None, meeting_id: str, action: str, request_id: str | None
    ) -> tuple[Caller, Appointment]:
        return self._gate.participant(row, meeting_id=meeting_id, action=action, request_id=request_id)

    def _moderate(
        self, firebase_uid: str, meeting_id: str, user_id: str, action: str, request_id: str | None,
        *, live: bool = False,
    ) -> tuple[Caller, Appointment, Row]:  # fmt: skip
        """A clinical control over one person of the meeting."""
        target = _target_uuid(user_id)
        row = self._controls.target_context(firebase_uid, meeting_id, target)
        caller, appointment = self._gate.clinical_control(row, meeting_id=meeting_id, action=action,
                                                          request_id=request_id)  # fmt: skip
        assert row is not None
        if live and row["session_status"] != "active":
            raise MeetingEnded()
        in_meeting = row["target_id"] is not None and (
            row["target_attendee_id"] is not None
            or row["target_lobby_state"] is not None
            or row["target_id"] in (appointment.provider_id, appointment.patient_id)
        )
        if not in_meeting:
            raise ParticipantNotInMeeting()
        if row["target_id"] == appointment.provider_id and caller.user_id != appointment.provider_id:
            raise CannotModerateProvider()
        return caller, appointment, row


def _participant_view(person: dict[str, Any], row: Row, appointment: Appointment) -> dict[str, Any]:
    state = person["lobby_state"]
    if state in ("waiting", "denied", "removed"):
        presence = state
    elif person["connected"]:
        presence = "joined"
    elif person["seen"]:
        presence = "left"
    else:
        presence = "not_joined"
    capabilities = stored_capabilities({**row, "caps_audio": person["audio"], "caps_video": person["video"],
                                        "caps_content": person["content"]}, person["user_id"])  # fmt: skip
    return {
        "userId": person["user_id"], "role": person["role"],
        "isAppointmentProvider": person["user_id"] == appointment.provider_id,
        "isAppointmentPatient": person["user_id"] == appointment.patient_id,
        "presence": presence, "networkType": person["network_type"], "allowed": capabilities.body(),
        "handRaised": person["hand_raised_at"] is not None, "handRaisedAt": person["hand_raised_at"],
    }  # fmt: skip
