"""Who may do what in which appointment: plain rules over plain values, no I/O.

- create: the appointment's provider or patient, only while video is enabled and the appointment
  is open (scheduled or in progress);
- join / view: the appointment's provider or patient, or a user added to the meeting (batch-join);
- clinical controls (recording, transcription, moderation) and adding attendees (batch-join): the
  appointment's provider, and provider-role staff the provider added to the meeting; never a
  patient, whoever happened to create the meeting;
- end: the appointment's provider, or the meeting's creator unless that creator is a patient:
  a patient leaves a consultation, the clinician closes it;
- consent: recorded by the appointment's patient (or, where consent is gathered outside this system,
  by its provider); shown to the appointment's participants;
- recording downloads: the provider (and the patient only where a setting allows);
- privacy operations (export, audit trail, erasure, legal hold): admins only.
Admins have no implicit access to calls: least privilege, and every access is a named participant.

Not knowing is not telling: a meeting the caller is not part of answers exactly like a meeting that
does not exist (404 meeting_not_found); an appointment the caller is not part of answers exactly
like one that does not exist (403 not_a_participant).
"""

from __future__ import annotations

from dataclasses import dataclass

from videocall.core.errors import (
    AdminOnly,
    AdmissionDenied,
    AppointmentNotOpen,
    MeetingNotFound,
    NotAClinicalController,
    NotAllowedToAddAttendees,
    NotAllowedToEnd,
    NotAllowedToRecordConsent,
    NotAParticipant,
    ParticipantRemoved,
    VideoNotEnabled,
)

OPEN_APPOINTMENT_STATUSES = frozenset({"scheduled", "in_progress"})


@dataclass(frozen=True)
class Caller:
    user_id: str
    role: str


@dataclass(frozen=True)
class Membership:
    """The caller's place in one meeting: whether a user added them (batch-join), and who; and their
    admission to the appointment (waiting, admitted, denied, removed: the controls context's lobby)."""

    added_by: str | None = None
    lobby_state: str | None = None

    @property
    def excluded(self) -> bool:
        return self.lobby_state in ("removed", "denied")

    @property
    def was_added(self) -> bool:
        return self.added_by is not None


@dataclass(frozen=True)
class Appointment:
    id: str
    provider_id: str
    patient_id: str
    video_enabled: bool
    status: str
    erased: bool = False  # a GDPR erasure ran: no new meetings or recordings

    def is_participant(self, caller: Caller) -> bool:
        return caller.user_id in (self.provider_id, self.patient_id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_APPOINTMENT_STATUSES and not self.erased


def authorize_create(caller: Caller, appointment: Appointment | None) -> Appointment:
    if appointment is None or not appointment.is_participant(caller):
        raise NotAParticipant()
    if not appointment.video_enabled:
        raise VideoNotEnabled()
    if not appointment.is_open:
        raise AppointmentNotOpen()
    return appointment


def authorize_join(
    caller: Caller, appointment: Appointment | None, *, was_added: bool, created_by: str | None = None,
    added_by: str | None = None, lobby_state: str | None = None,
) -> Appointment:  # fmt: skip
    """Participants; someone removed from (or denied) the consultation is not one until admitted again."""
    if appointment is None or not (appointment.is_participant(caller) or was_added):
        raise MeetingNotFound()
    if lobby_state == "removed":
        raise ParticipantRemoved()
    if lobby_state == "denied":
        raise AdmissionDenied()
    return appointment


def is_clinical_controller(caller: Caller, appointment: Appointment, membership: Membership) -> bool:
    """The appointment's provider, or provider-role staff the provider added to this meeting (never the
    appointment's patient, whatever their role; never someone removed or denied)."""
    if caller.user_id == appointment.provider_id:
        return True
    if caller.user_id == appointment.patient_id or membership.excluded:
        return False
    return caller.role == "provider" and membership.added_by == appointment.provider_id


def authorize_add_attendees(
    caller: Caller, appointment: Appointment | None, *, created_by: str | None, was_added: bool,
    added_by: str | None = None, lobby_state: str | None = None,
) -> Appointment:  # fmt: skip
    appointment = authorize_join(caller, appointment, was_added=was_added, lobby_state=lobby_state)
    if not is_clinical_controller(caller, appointment, Membership(added_by, lobby_state)):
        raise NotAllowedToAddAttendees()
    return appointment


def authorize_clinical_control(caller: Caller, appointment: Appointment | None, membership: Membership) -> Appointment:
    """Recording, transcription, moderation. Outsiders get the meeting's 404, patients a 403."""
    appointment = authorize_join(caller, appointment, was_added=membership.was_added,
                                 lobby_state=membership.lobby_state)  # fmt: skip
    if not is_clinical_controller(caller, appointment, membership):
        raise NotAClinicalController()
    return appointment


def authorize_view_appointment(caller: Caller, appointment: Appointment | None) -> Appointment:
    if appointment is None or not appointment.is_participant(caller):
        raise NotAParticipant()
    return appointment


def authorize_record_consent(caller: Caller, appointment: Appointment | None, *, source: str) -> Appointment:
    """source 'patient': the patient, in the app. 'external': consent was gathered outside this system
    and the appointment's provider records it."""
    appointment = authorize_view_appointment(caller, appointment)
    recorder = appointment.patient_id if source == "patient" else appointment.provider_id
    if caller.user_id != recorder:
        raise NotAllowedToRecordConsent(
            "Only the patient records consent."
            if source == "patient"
            else "Consent is gathered outside this system; the appointment's provider records it."
        )
    return appointment


def may_download_recordings(
    caller: Caller, appointment: Appointment, membership: Membership, *, patient_allowed: bool
) -> bool:
    if is_clinical_controller(caller, appointment, membership):
        return True
    return patient_allowed and caller.user_id == appointment.patient_id


def authorize_admin(caller: Caller) -> Caller:
    if caller.role != "admin":
        raise AdminOnly()
    return caller


def authorize_end(
    caller: Caller, appointment: Appointment | None, *, created_by: str | None, was_added: bool,
    added_by: str | None = None, lobby_state: str | None = None,
) -> Appointment:  # fmt: skip
    appointment = authorize_join(caller, appointment, was_added=was_added, lobby_state=lobby_state)
    if caller.user_id == appointment.provider_id:
        return appointment
    if caller.user_id == created_by and caller.role != "patient":
        return appointment
    raise NotAllowedToEnd()
