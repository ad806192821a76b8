"""Who may do what in which appointment: plain rules over plain values, no I/O.

- create: the appointment's provider or patient, only while video is enabled and the appointment
  is open (scheduled or in progress);
- join / view: the appointment's provider or patient, or a user added to the meeting (batch-join);
- add attendees (batch-join): the appointment's provider or the meeting's creator;
- end: the appointment's provider, or the meeting's creator unless that creator is a patient:
  a patient leaves a consultation, the clinician closes it.
Admins have no implicit access to calls: least privilege, and every access is a named participant.

Not knowing is not telling: a meeting the caller is not part of answers exactly like a meeting that
does not exist (404 meeting_not_found); an appointment the caller is not part of answers exactly
like one that does not exist (403 not_a_participant).
"""

from __future__ import annotations

from dataclasses import dataclass

from videocall.core.errors import (
    AppointmentNotOpen,
    MeetingNotFound,
    NotAllowedToAddAttendees,
    NotAllowedToEnd,
    NotAParticipant,
    VideoNotEnabled,
)

OPEN_APPOINTMENT_STATUSES = frozenset({"scheduled", "in_progress"})


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str


@dataclass(frozen=True)
class Appointment:
    id: str
    provider_id: str
    patient_id: str
    video_enabled: bool
    status: str

    def is_participant(self, caller: Caller) -> bool:
        return caller.user_id in (self.provider_id, self.patient_id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_APPOINTMENT_STATUSES


def authorize_create(caller: Caller, appointment: Appointment | None) -> Appointment:
    if appointment is None or not appointment.is_participant(caller):
        raise NotAParticipant()
    if not appointment.video_enabled:
        raise VideoNotEnabled()
    if not appointment.is_open:
        raise AppointmentNotOpen()
    return appointment


def authorize_join(
    caller: Caller, appointment: Appointment | None, *, was_added: bool, created_by: str | None = None
) -> Appointment:
    if appointment is None or not (appointment.is_participant(caller) or was_added):
        raise MeetingNotFound()
    return appointment


def authorize_add_attendees(
    caller: Caller, appointment: Appointment | None, *, created_by: str | None, was_added: bool
) -> Appointment:
    appointment = authorize_join(caller, appointment, was_added=was_added)
    if caller.user_id not in (appointment.provider_id, created_by):
        raise NotAllowedToAddAttendees()
    return appointment


def authorize_end(
    caller: Caller, appointment: Appointment | None, *, created_by: str | None, was_added: bool
) -> Appointment:
    appointment = authorize_join(caller, appointment, was_added=was_added)
    if caller.user_id == appointment.provider_id:
        return appointment
    if caller.user_id == created_by and caller.role != "patient":
        return appointment
    raise NotAllowedToEnd()
