"""Actions that span contexts, composed here in the face so no context reaches into another:

- create (or join the live meeting) and, when recording was asked for, start it or say why not;
- record consent, then stop the recordings a withdrawal forbids and start those a grant allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from videocall.consent.service import ConsentChange
from videocall.meetings.service import CreateMeetingCommand, MeetingJoin
from videocall.recordings.models import RecordingStatus
from videocall.runtime import Runtime


@dataclass(frozen=True)
class CreatedMeeting:
    join: MeetingJoin
    recording: RecordingStatus | None


def create_meeting(rt: Runtime, uid: str, command: CreateMeetingCommand, request_id: str | None) -> CreatedMeeting:
    join = rt.service.create_meeting(uid, command, request_id)
    recording = None
    if command.enable_recording:
        recording = rt.recordings.start_on_create(join, request_id)
    return CreatedMeeting(join, recording)


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
    elif change.consent.recording == "granted":
        started = rt.recordings.start_waiting(appointment_id, request_id)
    return ConsentOutcome(change, stopped, started)
