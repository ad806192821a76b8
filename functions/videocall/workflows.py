"""Actions that span contexts, composed here in the face so no context reaches into another:

- create (or join the live meeting) and, when recording was asked for, start it or say why not;
- create or join when the door (controls) says "wait": the patient enters the lobby and the provider
  is notified; admitting them notifies the patient;
- record consent, then stop the recordings a withdrawal forbids and start those a grant allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from videocall.controls.admission import MustWait
from videocall.core.access import Appointment
from videocall.core.errors import WaitingRoom

if TYPE_CHECKING:  # a function imports only the contexts its own workflow touches (cold starts)
    from videocall.consent.service import ConsentChange
    from videocall.controls.service import LobbyDecision, Waiting
    from videocall.meetings.service import CreateMeetingCommand, MeetingJoin
    from videocall.recordings.models import RecordingStatus
    from videocall.runtime import Runtime
    from videocall.transcripts.service import TranscriptionStatus


@dataclass(frozen=True)
class CreatedMeeting:
    join: MeetingJoin
    recording: RecordingStatus | None
    transcription: TranscriptionStatus | None = None


def create_meeting(
    rt: Runtime, uid: str, command: CreateMeetingCommand, request_id: str | None, *, lobby: bool = True
) -> CreatedMeeting | Waiting:
    """`lobby=False` (the old contract): a patient the door turns away gets 409 waiting_room instead."""
    try:
        join = rt.service.create_meeting(uid, command, request_id)
    except MustWait as door:
        if not lobby:
            raise WaitingRoom() from None
        return _wait_in_lobby(rt, door, request_id)
    if command.waiting_room is not None:
        assert join.caller is not None and join.appointment is not None
        rt.controls.set_waiting_room(join.caller, join.appointment, command.waiting_room, join.meeting["MeetingId"],
                                     request_id)  # fmt: skip
    recording = transcription = None
    if command.enable_recording:
        recording = rt.recordings.start_on_create(join, request_id)
    if command.enable_transcription:
        assert join.caller is not None and join.appointment is not None
        transcription = rt.transcripts.start_on_create(
            join.caller,
            join.appointment,
            join.session_id,
            join.meeting,
            command.transcription_language,
            join.transcription_state,
            request_id,
        )
    return CreatedMeeting(join, recording, transcription)


def join_meeting(rt: Runtime, uid: str, meeting_id: str, request_id: str | None) -> MeetingJoin | Waiting:
    try:
        return rt.service.join_meeting(uid, meeting_id, request_id)
    except MustWait as door:
        return _wait_in_lobby(rt, door, request_id)


def _wait_in_lobby(rt: Runtime, door: MustWait, request_id: str | None) -> Waiting:
    waiting = rt.controls.wait(door, request_id)
    if waiting.newly_waiting:
        rt.notifications.notify_patient_waiting(
            meeting_id=waiting.meeting_id, appointment_id=waiting.appointment_id, provider_id=waiting.provider_id
        )
    return waiting


def decide_lobby(
    rt: Runtime, uid: str, meeting_id: str, user_id: str, decision: str, request_id: str | None
) -> LobbyDecision:
    outcome = rt.controls.decide(uid, meeting_id, user_id, decision, request_id)
    if outcome.decision == "admit" and outcome.was_waiting:
        rt.notifications.notify_admitted(
            meeting_id=meeting_id, appointment_id=outcome.appointment_id, user_id=outcome.user_id
        )
    return outcome


def stop_recording(rt: Runtime, uid: str, meeting_id: str, request_id: str | None) -> RecordingStatus:
    """Stopping a recording while transcription runs keeps a capture going on the transcript's terms:
    a new capture that keeps no media (the recording's own capture, with its media, has ended)."""
    status = rt.recordings.stop(uid, meeting_id, request_id)
    session = rt.transcripts.is_transcribing(uid, meeting_id)
    if session is not None and status.recording is not None:
        appointment = Appointment(session["appointment_id"], session["provider_id"], session["patient_id"], True,
                                  "in_progress")  # fmt: skip
        rt.recordings.start_capture_for_transcript(session["caller_id"], appointment, session, request_id)
    return status


@dataclass(frozen=True)
class ConsentOutcome:
    change: ConsentChange
    recordings_stopped: int
    recordings_started: int


def record_consent(
    rt: Runtime, uid: str, appointment_id: str, decisions: dict[str, str], request_id: str | None
) -> ConsentOutcome:
    change = rt.consent.record(uid, appointment_id, decisions, request_id)
    stopped = started = 0
    # On the decision, not only on a change: a retried PUT finishes what a failed one left undone.
    if change.consent.recording == "refused":
        stopped = rt.recordings.stop_for_withdrawn_consent(change.appointment, change.actor, request_id)
        if change.consent.transcription == "granted":
            # The recording's capture carried the transcript too: transcription goes on in one that keeps no media.
            for session in rt.transcripts.transcribing_sessions(change.appointment.id):
                rt.recordings.start_capture_for_transcript(None, change.appointment, session, request_id)
    elif change.consent.recording == "granted":
        started = rt.recordings.start_waiting(appointment_id, request_id)
    if change.consent.transcription == "refused":
        stopped += len(rt.transcripts.stop_for_withdrawn_consent(change.appointment, change.actor, request_id))
        # Every capture that runs only for a transcript stops, whatever state transcription reached.
        stopped += rt.recordings.stop_transcript_captures_of(change.appointment, change.actor, request_id)
    elif change.consent.transcription == "granted":
        started += rt.transcripts.start_waiting(appointment_id, request_id)
    return ConsentOutcome(change, stopped, started)


def stop_transcription(rt: Runtime, uid: str, meeting_id: str, request_id: str | None) -> TranscriptionStatus:
    """Stop transcribing; a capture that ran only for the transcript stops with it (its files are then
    built into the transcript, and its media deleted)."""
    status = rt.transcripts.stop(uid, meeting_id, request_id)
    rt.recordings.stop_transcript_capture(meeting_id, None, "transcription_stopped", request_id)
    return status
