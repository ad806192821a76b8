"""The meeting rules: create, join, add attendees, end, view.

Budget per action (tests hold each to it): at most 3 database round trips; Chime calls as listed.
- create, meeting live:   DB context, Chime Get/CreateAttendee, DB record attendee+audit       (2 DB)
- create, no meeting:     DB context, DB claim, Chime CreateMeeting + CreateAttendee,
                          DB activate+attendee+audit                                          (3 DB)
- join:                   DB context, Chime Get/CreateAttendee, DB record attendee+audit       (2 DB)
- batch-join:             DB context, DB users, Chime BatchCreateAttendee x ceil(n/100),
                          DB record attendees+audit                                          (3 DB)
- end:                    DB context, Chime DeleteMeeting, DB end+audit                      (2 DB)
- view:                   DB context (with attendees), DB audit                               (2 DB)

A meeting Chime has auto-ended (NotFound) is marked ended. `join` then answers 410 meeting_ended;
`create` makes the appointment's next meeting (generation + 1) while the appointment is open, so
"create" always hands back a meeting that works.

Creating is safe under any number of simultaneous requests: the unique index "one live session per
appointment" lets one request claim the row (the leader); the others find it and call CreateMeeting
with the same ClientRequestToken, which Chime answers with the same meeting. Only the leader marks
a failure, and it deletes a Chime meeting it made only while the row is still not active, so there
is never a Chime meeting without its row nor an active row without its meeting.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from videocall.controls.admission import JoinAdmission, stored_capabilities
from videocall.core.access import (
    Appointment,
    Caller,
    authorize_add_attendees,
    authorize_create,
    authorize_end,
    authorize_join,
)
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate
from videocall.core.context import appointment_from as _appointment
from videocall.core.context import caller_from as _caller
from videocall.core.db import Row
from videocall.core.errors import (
    ChimeUnavailable,
    CreateInProgress,
    DatabaseUnavailable,
    DomainError,
    MeetingEnded,
)
from videocall.core.languages import check_language
from videocall.core.observability import MetricUnit, count_failure, logger, metrics
from videocall.meetings.chime import ChimeAttendeeGone, ChimeGateway, ChimeMeetingGone
from videocall.meetings.repository import AttendeeRecord, SessionRepository

# A policy rule about a meeting: (caller, appointment, created_by=, was_added=) -> the appointment, or raise.
MeetingRule = Callable[..., Appointment]


def external_user_id(user_id: str) -> str:
    """Chime's ExternalUserId: opaque, no PII (our random user id, without dashes)."""
    return "u_" + uuid.UUID(user_id).hex


@dataclass(frozen=True)
class CreateMeetingCommand:
    appointment_id: str
    enable_recording: bool = False
    enable_transcription: bool = False
    transcription_language: str = "en-US"
    waiting_room: bool | None = None  # set by the appointment's provider; None leaves it as it is


@dataclass(frozen=True)
class MeetingJoin:
    """What the app hands to `new MeetingSessionConfiguration(meeting, attendee)`."""

    meeting: dict[str, Any]
    attendee: dict[str, Any]
    session_id: str
    recording_enabled: bool
    transcription_enabled: bool
    created: bool = False
    # Who joined which appointment's meeting: other contexts act on the same call without a new read.
    caller: Caller | None = None
    appointment: Appointment | None = None
    transcription_state: str = "off"  # the session's, as read (a live meeting may be transcribed already)


@dataclass
class BatchJoinResult:
    meeting_id: str
    attendees: list[dict[str, Any]] = field(default_factory=list)  # {userId, attendee, alreadyAdded}
    errors: list[dict[str, str]] = field(default_factory=list)  # {userId, code, message}


@dataclass(frozen=True)
class EndResult:
    meeting_id: str
    ended_at: str
    already_ended: bool


@dataclass(frozen=True)
class SessionState:
    session_id: str
    meeting_id: str
    appointment_id: str
    status: str
    recording_enabled: bool
    recording_state: str
    transcription_enabled: bool
    transcription_language: str | None
    created_at: str
    ended_at: str | None
    attendees: list[dict[str, Any]]


def check_transcription_language(command: CreateMeetingCommand) -> None:
    if command.enable_transcription:
        check_language(command.transcription_language)


def _meeting_object(row: Row) -> dict[str, Any]:
    """The Chime Meeting, rebuilt from the session row (no GetMeeting call needed to join)."""
    meeting: dict[str, Any] = {
        "MeetingId": row["meeting_id"],
        "ExternalMeetingId": row["external_meeting_id"],
        "MediaRegion": row["media_region"],
        "MediaPlacement": row["media_placement"],
    }
    if row.get("meeting_features"):
        meeting["MeetingFeatures"] = row["meeting_features"]
    if row.get("meeting_arn"):
        meeting["MeetingArn"] = row["meeting_arn"]
    return meeting


class MeetingService:
    def __init__(
        self, sessions: SessionRepository, chime: ChimeGateway, gate: AccessGate,
        admission: JoinAdmission | None = None,
    ) -> None:  # fmt: skip
        self._sessions = sessions
        self._chime = chime
        self._gate = gate
        # The door (controls context): the waiting room, removals, and the capabilities a person
        # enters with (a muted patient who rejoins stays muted).
        self._admission = admission or JoinAdmission()

    # --- create ------------------------------------------------------------------------------------
    def create_meeting(self, firebase_uid: str, command: CreateMeetingCommand, request_id: str | None) -> MeetingJoin:
        check_transcription_language(command)
        row = self._sessions.appointment_context(firebase_uid, command.appointment_id)
        caller = _caller(row)
        assert row is not None
        appointment = self._authorized(
            lambda: authorize_create(caller, _appointment(row)),
            caller, "meeting.create", command.appointment_id, None, request_id, row,
        )  # fmt: skip
        self._admission.check_setting(caller, appointment, command.waiting_room)
        capabilities = self._admission.admit(caller, appointment, row, session_live=row["session_status"] == "active")
        retire = None
        if row["session_status"] == "active":
            try:
                return self._join_live(caller, appointment, row, request_id, action="meeting.join",
                                       capabilities=capabilities)  # fmt: skip
            except ChimeMeetingGone:
                logger.info("live meeting was auto-ended by Chime; creating the next one",
                            extra={"meeting_id": row["meeting_id"]})  # fmt: skip
                retire = row["session_id"]
        elif row["session_status"] == "creating":
            if row["session_stale"]:
                retire = row["session_id"]
            else:
                # Another request is creating this meeting right now: make the same call it makes.
                return self._finish_create(caller, appointment, command, row, leader=False, request_id=request_id,
                                           capabilities=capabilities)  # fmt: skip
        return self._start_new(caller, appointment, command, retire, request_id, capabilities)

    def _start_new(
        self, caller: Caller, appointment: Appointment, command: CreateMeetingCommand,
        retire: str | None, request_id: str | None, capabilities: dict[str, str],
    ) -> MeetingJoin:  # fmt: skip
        audit = AuditEntry(caller.user_id, "meeting.create", appointment.id, appointment.patient_id, None, request_id)
        claim = None
        for _ in range(3):
            claim = self._sessions.claim_session(
                appointment_id=appointment.id,
                created_by=caller.user_id,
                recording_enabled=command.enable_recording,
                transcription_enabled=command.enable_transcription,
                transcription_language=command.transcription_language if command.enable_transcription else None,
                retire_session_id=retire,
                audit=audit,
            )
            if claim is not None:
                break
        if claim is None:
            raise CreateInProgress()
        return self._finish_create(caller, appointment, command, claim, leader=claim["claimed"], request_id=request_id,
                                   capabilities=capabilities)  # fmt: skip

    def _finish_create(
        self, caller: Caller, appointment: Appointment, command: CreateMeetingCommand,
        session: Row, *, leader: bool, request_id: str | None, capabilities: dict[str, str],
    ) -> MeetingJoin:  # fmt: skip
        session_id = session["session_id"]
        started = time.perf_counter()
        # A meeting Chime already made for this session (an earlier try's attendee call was throttled).
        meeting: dict[str, Any] | None = session.get("pending_meeting")
        kept = meeting is not None
        try:
            if meeting is None:
                meeting = self._chime.create_meeting(
                    client_request_token=session["client_request_token"], external_meeting_id=appointment.id
                )
            attendee = self._chime.create_attendee(meeting["MeetingId"], external_user_id(caller.user_id), capabilities)
        except ChimeUnavailable:
            # Throttled or unavailable (503, Retry-After): the row stays 'creating' and the meeting, if made,
            # is kept on it, so the retry adds its attendee to the same meeting without another CreateMeeting
            # (under a rate limit, failing here made orphans, and calling CreateMeeting again spent the budget).
            # Nobody retrying: the row goes stale and the next create takes it over with the same token.
            count_failure("create_chime_unavailable")
            if meeting is not None and not kept:
                with contextlib.suppress(DomainError):  # a lost write only costs the retry one CreateMeeting
                    self._sessions.keep_pending_meeting(session_id, meeting)
            raise
        except DomainError as exc:
            self._create_failed(session_id, meeting, exc.code, leader, caller, appointment, request_id)
            raise
        except ChimeMeetingGone:
            # The meeting we were about to join was deleted by a failing leader.
            self._create_failed(session_id, meeting, "meeting_gone", leader, caller, appointment, request_id)
            raise CreateInProgress() from None
        record = AttendeeRecord(caller.user_id, attendee["AttendeeId"], attendee["ExternalUserId"])
        audit = AuditEntry(
            caller.user_id, "meeting.join", appointment.id, appointment.patient_id, meeting["MeetingId"], request_id,
            details={"created": leader},
        )  # fmt: skip
        try:
            activated = self._sessions.activate_session(
                session_id=session_id, meeting=meeting, attendee=record, audit=audit
            )
        except DomainError as exc:
            count_failure("database")
            if leader:
                self._activate_failed(session_id, meeting, exc.code, caller, appointment, request_id)
            raise
        if not activated:
            raise CreateInProgress()
        if leader:
            metrics.add_metric(name="MeetingsCreated", unit=MetricUnit.Count, value=1)
        self._count_join(started)
        logger.info("meeting ready", extra={"meeting_id": meeting["MeetingId"], "session_id": session_id,
                                            "appointment_id": appointment.id, "new_meeting": leader})  # fmt: skip
        return MeetingJoin(
            meeting=meeting,
            attendee=attendee,
            session_id=session_id,
            recording_enabled=command.enable_recording,
            transcription_enabled=command.enable_transcription,
            created=leader,
            caller=caller,
            appointment=appointment,
        )

    def _create_failed(
        self, session_id: str, meeting: dict[str, Any] | None, code: str, leader: bool,
        caller: Caller, appointment: Appointment, request_id: str | None,
    ) -> None:  # fmt: skip
        count_failure(f"create_{code}")
        if not leader:
            return
        meeting_id = meeting["MeetingId"] if meeting else None
        failed = self._sessions.fail_session(
            session_id=session_id,
            error_message=f"Chime create failed: {code}",
            audit=AuditEntry(
                caller.user_id,
                "meeting.create",
                appointment.id,
                appointment.patient_id,
                meeting_id,
                request_id,
                outcome="failed",
                details={"error": code},
            ),
        )
        if failed and meeting_id:
            self._chime.delete_meeting(meeting_id)

    def _activate_failed(
        self, session_id: str, meeting: dict[str, Any], code: str, caller: Caller, appointment: Appointment,
        request_id: str | None,
    ) -> None:  # fmt: skip
        """The activate statement failed, maybe after it committed (the reply lost), maybe after a follower
        activated the row with this same meeting. Mark the create failed (on a new connection): the meeting
        is deleted only if the row was still 'creating', so an active row never loses its meeting. If the
        database is still unreachable, it is deleted as before (in the double fault, committed and then
        down, the row's next join answers 410 and the next create makes the next meeting)."""
        try:
            self._create_failed(session_id, meeting, code, True, caller, appointment, request_id)
        except DatabaseUnavailable:
            self._chime.delete_meeting(meeting["MeetingId"])

    # --- join --------------------------------------------------------------------------------------
    def join_meeting(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> MeetingJoin:
        caller, appointment, row = self._meeting_access(
            firebase_uid, meeting_id, request_id, "meeting.join", authorize_join
        )
        if row["session_status"] != "active":
            raise MeetingEnded()
        capabilities = self._admission.admit(caller, appointment, row, session_live=True)
        try:
            return self._join_live(caller, appointment, row, request_id, action="meeting.join",
                                   capabilities=capabilities)  # fmt: skip
        except ChimeMeetingGone:
            self._mark_gone(caller, appointment, row, request_id)
            raise MeetingEnded() from None

    def _join_live(
        self, caller: Caller, appointment: Appointment, row: Row, request_id: str | None, *, action: str,
        capabilities: dict[str, str],
    ) -> MeetingJoin:  # fmt: skip
        started = time.perf_counter()
        meeting_id = row["meeting_id"]
        attendee = None
        stale_attendee = None
        if row["caller_attendee_id"]:
            # Rejoining: hand back the same attendee, so retries never pile up attendees (which count
            # toward 250 until deleted). If Chime does not return its JoinToken (unconfirmed whether
            # GetAttendee does), make a new one and delete the old one.
            try:
                attendee = self._chime.get_attendee(meeting_id, row["caller_attendee_id"])
            except ChimeAttendeeGone:
                attendee = None
            if attendee is not None and not attendee.get("JoinToken"):
                stale_attendee, attendee = attendee["AttendeeId"], None
        if attendee is None:
            attendee = self._chime.create_attendee(meeting_id, external_user_id(caller.user_id), capabilities)
            if stale_attendee and stale_attendee != attendee["AttendeeId"]:
                self._chime.delete_attendee(meeting_id, stale_attendee)
        if attendee["AttendeeId"] != row["caller_attendee_id"]:
            try:
                self._sessions.record_attendees(
                    session_id=row["session_id"],
                    records=[AttendeeRecord(caller.user_id, attendee["AttendeeId"], attendee["ExternalUserId"])],
                    added_by=None,
                    audit=AuditEntry(
                        caller.user_id, action, appointment.id, appointment.patient_id, meeting_id, request_id
                    ),
                )
            except DomainError:
                # Not recorded: its JoinToken is never handed out, and the retry makes another. Take it back
                # so no attendee nobody knows of counts toward the meeting's 250.
                self._chime.delete_attendee(meeting_id, attendee["AttendeeId"])
                raise
        else:
            self._sessions.audit(
                AuditEntry(
                    caller.user_id,
                    action,
                    appointment.id,
                    appointment.patient_id,
                    meeting_id,
                    request_id,
                    details={"rejoin": True},
                ),
                session_id=row["session_id"],
            )
        self._count_join(started)
        return MeetingJoin(
            meeting=_meeting_object(row),
            attendee=attendee,
            session_id=row["session_id"],
            recording_enabled=row["recording_enabled"],
            transcription_enabled=row["transcription_enabled"],
            caller=caller,
            appointment=appointment,
            transcription_state=row["transcription_state"],
        )

    def _mark_gone(self, caller: Caller, appointment: Appointment, row: Row, request_id: str | None) -> None:
        self._sessions.end_session(
            session_id=row["session_id"],
            ended_by=None,
            audit=AuditEntry(
                caller.user_id,
                "meeting.auto_ended",
                appointment.id,
                appointment.patient_id,
                row["meeting_id"],
                request_id,
            ),
        )
        metrics.add_metric(name="MeetingsEnded", unit=MetricUnit.Count, value=1)

    # --- batch-join ----------------------------------------------------------------------------------
    def add_attendees(
        self, firebase_uid: str, meeting_id: str, user_ids: Sequence[str], request_id: str | None
    ) -> BatchJoinResult:
        caller, appointment, row = self._meeting_access(
            firebase_uid, meeting_id, request_id, "meeting.add_attendees", authorize_add_attendees
        )
        if row["session_status"] != "active":
            raise MeetingEnded()
        result = BatchJoinResult(meeting_id=meeting_id)
        valid_ids = []
        for user_id in user_ids:
            try:
                valid_ids.append(str(uuid.UUID(user_id)))
            except ValueError:
                result.errors.append(_user_error(user_id, "user_not_found", "No registered user has this id."))
        known = (
            {r["user_id"]: r for r in self._sessions.users_for_batch(row["session_id"], valid_ids)} if valid_ids else {}
        )
        to_create: dict[str, str] = {}  # ExternalUserId -> user id
        for user_id in valid_ids:
            user = known.get(user_id)
            if user is None:
                result.errors.append(_user_error(user_id, "user_not_found", "No registered user has this id."))
            elif user["lobby_state"] in ("removed", "denied"):
                result.errors.append(_user_error(
                    user_id, f"participant_{user['lobby_state']}",
                    "This user was removed or denied; admit them through the lobby first.",
                ))  # fmt: skip
            elif user["attendee_id"]:
                result.attendees.append({
                    "userId": user_id,
                    "attendee": {"AttendeeId": user["attendee_id"], "ExternalUserId": user["external_user_id"]},
                    "alreadyAdded": True,
                })  # fmt: skip
            else:
                to_create[external_user_id(user_id)] = user_id
        try:
            # Each arrives with what is stored for them, else the meeting's default (muted after "mute everyone").
            allowed = {
                ext: stored_capabilities({**row, **{k: v for k, v in known[uid].items() if k.startswith("caps_")}},
                                         uid).chime()
                for ext, uid in to_create.items()
            }  # fmt: skip
            batch = self._chime.batch_create_attendees(meeting_id, list(to_create), allowed)
        except ChimeMeetingGone:
            self._mark_gone(caller, appointment, row, request_id)
            raise MeetingEnded() from None
        records = []
        for attendee in batch.attendees:
            user_id = to_create[attendee["ExternalUserId"]]
            records.append(AttendeeRecord(user_id, attendee["AttendeeId"], attendee["ExternalUserId"]))
            result.attendees.append({"userId": user_id, "attendee": attendee, "alreadyAdded": False})
        for error in batch.errors:
            code = error.get("ErrorCode") or "chime_error"
            result.errors.append(_user_error(
                to_create.get(error["ExternalUserId"], ""), "attendee_not_added",
                f"The video service did not add this user ({code}).",
            ))  # fmt: skip
        self._sessions.record_attendees(
            session_id=row["session_id"],
            records=records,
            added_by=caller.user_id,
            audit=AuditEntry(
                caller.user_id,
                "meeting.add_attendees",
                appointment.id,
                appointment.patient_id,
                meeting_id,
                request_id,
                details={"added_user_ids": [r.user_id for r in records], "failed": len(result.errors)},
            ),
        )
        metrics.add_metric(name="AttendeesAdded", unit=MetricUnit.Count, value=len(records))
        if result.errors:
            count_failure("batch_join_partial")
        return result

    # --- end ---------------------------------------------------------------------------------------
    def end_meeting(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> EndResult:
        caller, appointment, row = self._meeting_access(
            firebase_uid, meeting_id, request_id, "meeting.end", authorize_end
        )
        if row["session_status"] == "failed":
            raise MeetingEnded()
        already_ended = row["session_status"] == "ended"
        if not already_ended:
            self._chime.delete_meeting(meeting_id)
        ended = self._sessions.end_session(
            session_id=row["session_id"],
            ended_by=caller.user_id,
            audit=AuditEntry(
                caller.user_id,
                "meeting.end",
                appointment.id,
                appointment.patient_id,
                meeting_id,
                request_id,
                details={"already_ended": already_ended},
            ),
        )
        assert ended is not None
        if not already_ended:
            metrics.add_metric(name="MeetingsEnded", unit=MetricUnit.Count, value=1)
            duration = (ended["ended_at"] - row["created_at"]).total_seconds()
            metrics.add_metric(name="MeetingDuration", unit=MetricUnit.Seconds, value=max(0.0, duration))
            logger.info("meeting ended", extra={"meeting_id": meeting_id, "session_id": row["session_id"]})
        return EndResult(meeting_id=meeting_id, ended_at=ended["ended_at"].isoformat(), already_ended=already_ended)

    # --- view --------------------------------------------------------------------------------------
    def get_meeting(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> SessionState:
        caller, appointment, row = self._meeting_access(
            firebase_uid, meeting_id, request_id, "meeting.view", authorize_join, with_attendees=True
        )
        self._sessions.audit(
            AuditEntry(caller.user_id, "meeting.view", appointment.id, appointment.patient_id, meeting_id, request_id),
            session_id=row["session_id"],
        )
        return SessionState(
            session_id=row["session_id"],
            meeting_id=meeting_id,
            appointment_id=appointment.id,
            status=row["session_status"],
            recording_enabled=row["recording_enabled"],
            recording_state=row["recording_state"],
            transcription_enabled=row["transcription_enabled"],
            transcription_language=row["transcription_language"],
            created_at=row["created_at"].isoformat(),
            ended_at=row["ended_at"].isoformat() if row["ended_at"] else None,
            attendees=row["attendees"],
        )

    # --- shared -------------------------------------------------------------------------------------
    def _meeting_access(
        self,
        firebase_uid: str,
        meeting_id: str,
        request_id: str | None,
        action: str,
        rule: MeetingRule,
        *,
        with_attendees: bool = False,
    ) -> tuple[Caller, Appointment, Row]:
        """One round trip for the caller, the meeting and the caller's place in it; then the policy."""
        row = self._sessions.meeting_context(firebase_uid, meeting_id, with_attendees=with_attendees)
        caller = _caller(row)
        assert row is not None
        appointment = self._authorized(
            lambda: rule(
                caller, _appointment(row), created_by=row["created_by"], was_added=bool(row["caller_was_added"]),
                added_by=row["caller_added_by"], lobby_state=row["caller_lobby_state"],
            ),
            caller, action, None, meeting_id, request_id, row,
        )  # fmt: skip
        return caller, appointment, row

    def _authorized(
        self, decide: Any, caller: Caller, action: str, appointment_id: str | None, meeting_id: str | None,
        request_id: str | None, row: Row,
    ) -> Appointment:  # fmt: skip
        """Apply a policy decision; a denial is written to the audit trail before it is answered."""
        appointment: Appointment = self._gate.check(
            decide, caller=caller, action=action, row=row, meeting_id=meeting_id, appointment_id=appointment_id,
            request_id=request_id,
        )  # fmt: skip
        return appointment

    @staticmethod
    def _count_join(started: float) -> None:
        metrics.add_metric(name="Joins", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="JoinLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )


def _user_error(user_id: str, code: str, message: str) -> dict[str, str]:
    return {"userId": user_id, "code": code, "message": message}
