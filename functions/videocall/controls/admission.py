"""What the controls context publishes to the join path (meetings): who may enter now, and with
which capabilities.

The meetings context embeds `ADMISSION_COLUMNS` / `ADMISSION_JOINS` in the one read that starts a
create or a join (read-only: this context owns the tables), and hands the row to `JoinAdmission.admit`,
so the waiting room and the stored mute cost the join no extra round trip.

Capabilities are Chime's (`SendReceive | Send | Receive | None` for Audio, Video, Content). "Off"
means `Receive`: a muted person still hears, a person whose video is off still sees others, and
content (screen share) can only be received while video can (Chime refuses Content Receive with
Video None or Send).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videocall.core.access import Appointment, Caller, Membership, is_clinical_controller
from videocall.core.db import Row
from videocall.core.errors import AdmissionDenied, DomainError, NotAClinicalController, ParticipantRemoved

ON, OFF = "SendReceive", "Receive"
KINDS = ("audio", "video", "content")
CHIME_KEYS = {"audio": "Audio", "video": "Video", "content": "Content"}

# Columns over the aliases every meeting read uses: u (caller), a (appointment), s (session, may be NULL).
ADMISSION_COLUMNS = """
    acs.waiting_room AS waiting_room, le.state AS lobby_state,
    pc.audio AS caps_audio, pc.video AS caps_video, pc.content AS caps_content,
    sc.join_audio AS session_join_audio, sc.exempt_user_id::text AS session_exempt_user_id"""

ADMISSION_JOINS = """
      LEFT JOIN appointment_call_settings acs ON acs.appointment_id = a.id
      LEFT JOIN lobby_entries le ON le.appointment_id = a.id AND le.user_id = u.id
      LEFT JOIN participant_controls pc ON pc.session_id = s.id AND pc.user_id = u.id
      LEFT JOIN session_controls sc ON sc.session_id = s.id"""


class WaitingRoomOnlyForClinicians(NotAClinicalController):
    message = "Only the appointment's provider turns the waiting room on or off."


# What the door answers besides letting in (declared on create and join in the OpenAPI document).
DOOR_ERRORS: tuple[type[DomainError], ...] = (AdmissionDenied, ParticipantRemoved)


@dataclass(frozen=True)
class Capabilities:
    audio: str = ON
    video: str = ON
    content: str = ON

    def chime(self) -> dict[str, str]:
        return {"Audio": self.audio, "Video": self.video, "Content": self.content}

    def body(self) -> dict[str, str]:
        """The API's view: on (may send) or off (receives only)."""
        return {kind: "on" if getattr(self, kind) in (ON, "Send") else "off" for kind in KINDS}

    def merged(self, change: dict[str, str]) -> Capabilities:
        """Apply {"audio": "on" | "off", ...}; keys not given keep their value."""
        values = {kind: getattr(self, kind) for kind in KINDS}
        for kind, value in change.items():
            values[kind] = ON if value == "on" else OFF
        return Capabilities(**values)


class MustWait(Exception):
    """Not an error: the caller is a patient of a consultation with a waiting room who has not been
    admitted yet. The face (videocall.workflows) puts them in the lobby and answers 202."""

    def __init__(self, *, caller: Caller, appointment: Appointment, meeting_id: str | None, session_id: str | None):
        super().__init__("waiting for admission")
        self.caller = caller
        self.appointment = appointment
        self.meeting_id = meeting_id
        self.session_id = session_id


def stored_capabilities(row: Row, user_id: str, prefix: str = "caps_") -> Capabilities:
    """A person's capabilities in a meeting: their own, else the meeting's default for late joiners (after
    "mute everyone": all but the person who muted and the appointment's provider)."""
    join_audio = row.get("session_join_audio")
    exempt = (row.get("session_exempt_user_id"), row.get("provider_id"))
    default_audio = join_audio if join_audio and user_id not in exempt else ON
    return Capabilities(
        audio=row.get(f"{prefix}audio") or default_audio,
        video=row.get(f"{prefix}video") or ON,
        content=row.get(f"{prefix}content") or ON,
    )


class JoinAdmission:
    """The rule at the door, applied by the meetings context to every create and join."""

    def __init__(self, *, waiting_room_default: bool = False) -> None:
        self._default = waiting_room_default

    def waiting_room(self, row: Row) -> bool:
        stored = row.get("waiting_room")
        return self._default if stored is None else bool(stored)

    def check_setting(self, caller: Caller, appointment: Appointment, waiting_room: bool | None) -> None:
        """Only the appointment's provider sets the waiting room (on create); checked before anything is made."""
        if waiting_room is not None and caller.user_id != appointment.provider_id:
            raise WaitingRoomOnlyForClinicians()

    def admit(self, caller: Caller, appointment: Appointment, row: Row, *, session_live: bool) -> dict[str, Any]:
        """The Chime capabilities the caller's attendee is created with; raises when they may not enter."""
        state = row.get("lobby_state")
        if state == "removed":
            raise ParticipantRemoved()
        if state == "denied":
            raise AdmissionDenied()
        if (
            caller.user_id == appointment.patient_id
            and state != "admitted"
            and not row.get("caller_attendee_id")
            and not is_clinical_controller(caller, appointment, Membership(row.get("caller_added_by")))
            and self.waiting_room(row)
        ):
            raise MustWait(
                caller=caller, appointment=appointment,
                meeting_id=row.get("meeting_id") if session_live else None,
                session_id=row.get("session_id") if session_live else None,
            )  # fmt: skip
        return stored_capabilities(row, caller.user_id).chime()
