"""Live transcription and the clinical record of each call.

Control (clinical staff; the patient's transcription consent): start, stop, start on create. The
transcript reaches S3 only through a capture pipeline, so starting transcription starts a capture when
none runs; a capture started only for it keeps no media (its audio and video are deleted as soon as
the transcript is built, never offered for download). The capture is the recordings context's: it is
reached through the `captures` callable the runtime hands in, never through its repository.

Record (after a capture's files land): the transcript is parsed tolerantly and assembled into turns by
speaker; with the patient's AI-processing consent and an English transcript, Comprehend Medical finds
entities and ICD-10 candidates (documentation candidates for the clinician, never a diagnosis); with
CLINICAL_SUMMARY on, a draft note is written by a model on Bedrock, shown to the provider only until
reviewed. Failures mark the record incomplete with the reason; the reconciler completes it later.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from videocall.core.access import (
    Appointment,
    Caller,
    Membership,
    is_clinical_controller,
)
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate, membership_from
from videocall.core.db import Row
from videocall.core.errors import ConsentRequired, DomainError, InvalidRequest, MeetingEnded, MeetingNotFound
from videocall.core.observability import MetricUnit, count_failure, logger, metrics
from videocall.core.storage import ObjectStore
from videocall.meetings.chime import ChimeGateway
from videocall.transcripts.assembly import Speaker, assemble, parse_transcription_file
from videocall.transcripts.medical import ComprehendMedicalGateway, SegmentText
from videocall.transcripts.policy import check_specialty, plan

RUNNING = ("starting", "on", "interrupted")
# Chime's Transcription* events: the state each moves to, from which states, and whether ordering matters.
EVENTS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "chime:TranscriptionStarted": ("on", ("off", "starting", "interrupted", "failed"), True),
    "chime:TranscriptionResumed": ("on", ("interrupted",), True),
    "chime:TranscriptionInterrupted": ("interrupted", ("starting", "on"), True),
    "chime:TranscriptionStopped": ("off", RUNNING, True),
    "chime:TranscriptionFailed": ("failed", RUNNING, True),
}
ENGLISH = ("en-US", "en-GB", "en-AU")
MAX_PAGE = 500
CONSENT_CHECKED_BY_STATEMENT = "checked_by_statement"  # no consent read beforehand: the update checks it

# (actor, appointment, session row with meeting_id/meeting_arn/session_id, request id) -> None
CaptureStarter = Callable[[str, Appointment, Row, str | None], Any]


@dataclass(frozen=True)
class TranscriptionStatus:
    meeting_id: str
    state: str
    language: str | None = None
    engine: str | None = None
    region: str | None = None
    reason: str | None = None


@dataclass
class TranscriptPage:
    meeting_id: str
    state: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    first_page: dict[str, Any] | None = None  # processing, partialCoverage, entities, icd10, summary


def encode_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"t1:{sequence}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, value = text.split(":", 1)
        sequence = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("The cursor is not valid.") from None
    if version != "t1" or sequence < 0:
        raise InvalidRequest("The cursor is not valid.")
    return sequence


class TranscriptService:
    def __init__(
        self, transcripts: Any, chime: ChimeGateway, store: ObjectStore, gate: AccessGate, *,
        captures: CaptureStarter, transcript_files: Callable[[str], list[str]],
        discard_media: Callable[[str], int], release_capture: Callable[[str, str], Any],
        medical: Callable[[], ComprehendMedicalGateway],
        summary: Callable[[], Any] | None, policy: str, medical_region: str, standard_region: str,
        specialty: str, for_patient: bool, icd10: bool,
    ) -> None:  # fmt: skip
        self._transcripts = transcripts
        self._chime = chime
        self._store = store
        self._gate = gate
        self._captures = captures
        self._files = transcript_files
        self._discard = discard_media
        self._release = release_capture
        self._medical = medical
        self._summary = summary
        self._policy = policy
        self._regions = (medical_region, standard_region)
        self._specialty = specialty
        self._for_patient = for_patient
        self._icd10 = icd10

    # --- control ---------------------------------------------------------------------------------------
    def start(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, *, language: str | None = None,
        specialty: str | None = None,
    ) -> TranscriptionStatus:  # fmt: skip
        caller, appointment, row = self._control_access(firebase_uid, meeting_id, request_id, "transcription.start")
        return self._start(caller.user_id, appointment, row, request_id, language, specialty, wait=False)

    def start_on_create(
        self, caller: Caller, appointment: Appointment, session_id: str, meeting: dict[str, Any], language: str,
        transcription_state: str, request_id: str | None,
    ) -> TranscriptionStatus:  # fmt: skip
        """create with enableTranscription: the meeting exists whatever happens here."""
        meeting_id = meeting["MeetingId"]
        if not is_clinical_controller(caller, appointment, Membership()):
            return TranscriptionStatus(meeting_id, "off", reason="clinician_only")
        # What create already read; consent is checked by the statement that begins the start.
        row = {"session_id": session_id, "meeting_id": meeting_id, "meeting_arn": meeting.get("MeetingArn"),
               "session_status": "active", "transcription_state": transcription_state,
               "consent_transcription": CONSENT_CHECKED_BY_STATEMENT}  # fmt: skip
        try:
            return self._start(caller.user_id, appointment, row, request_id, language, None, wait=True)
        except ConsentRequired:
            return TranscriptionStatus(meeting_id, "waiting_for_consent", language, reason="consent_required")
        except DomainError as exc:
            if exc.status < 500 and exc.code != "recording_limit_reached":
                raise
            return TranscriptionStatus(meeting_id, "off", language, reason=exc.code)

    def _start(
        self, actor: str, appointment: Appointment, row: Row, request_id: str | None, language: str | None,
        specialty: str | None, *, wait: bool,
    ) -> TranscriptionStatus:  # fmt: skip
        meeting_id = row["meeting_id"]
        if row.get("session_status") != "active":
            raise MeetingEnded()
        if row.get("transcription_state") in RUNNING:
            return self._status(row)  # starting twice is a no-op that returns the current state
        chosen = plan(language or row.get("transcription_language") or "en-US", policy=self._policy,
                      medical_region=self._regions[0], standard_region=self._regions[1])  # fmt: skip
        chosen_specialty = check_specialty(specialty or self._specialty)
        # Consent is checked by the statement that begins the start (so a withdrawal cannot slip in);
        # a value already read ("refused", or no decision) saves that round trip.
        begun = row.get("consent_transcription") in ("granted", CONSENT_CHECKED_BY_STATEMENT) and (
            self._transcripts.set_state(
                session_id=row["session_id"], state="starting", language=chosen.language, engine=chosen.engine,
                region=chosen.region, only_with_consent=True,
                audit=self._audit(actor, "transcription.start", appointment, meeting_id, request_id,
                                  details={"engine": chosen.engine, "region": chosen.region,
                                           "language": chosen.language}),
            )
        )  # fmt: skip
        if not begun:
            if wait:
                self._transcripts.set_state(
                    session_id=row["session_id"], state="waiting_for_consent", language=chosen.language, engine=None,
                    region=None, only_from=("off",),
                    audit=self._audit(actor, "transcription.start", appointment, meeting_id, request_id,
                                      outcome="denied", details={"reason": "consent_required", "waiting": True}),
                )  # fmt: skip
            raise ConsentRequired("The patient has not granted consent to transcribe this appointment.")
        try:
            self._captures(actor, appointment, row, request_id)  # the transcript reaches S3 only through a capture
            self._chime.start_transcription(meeting_id, chosen.configuration(chosen_specialty))
        except DomainError:
            self._abandon(row, appointment, actor, request_id, "start_failed")
            raise
        if not self._transcripts.consented(row["session_id"]):
            # Withdrawn while Chime was starting: the withdrawal found nothing to stop yet, so stop here.
            self._chime.stop_transcription(meeting_id)
            self._abandon(row, appointment, actor, request_id, "consent_withdrawn")
            raise ConsentRequired("The patient withdrew transcription consent; transcription was stopped.")
        metrics.add_metric(name="TranscriptionsStarted", unit=MetricUnit.Count, value=1)
        return TranscriptionStatus(meeting_id, "starting", chosen.language, chosen.engine, chosen.region)

    def _abandon(self, row: Row, appointment: Appointment, actor: str | None, request_id: str | None,
                 reason: str) -> None:  # fmt: skip
        self._transcripts.set_state(
            session_id=row["session_id"], state="off", language=None, engine=None, region=None,
            audit=self._audit(actor, "transcription.stop", appointment, row["meeting_id"], request_id,
                              details={"reason": reason}),
        )  # fmt: skip
        self._release(row["meeting_id"], reason)

    def start_waiting(self, appointment_id: str, request_id: str | None) -> int:
        """Transcription consent was granted: start what a clinician asked for while it was missing."""
        started = 0
        for row in self._transcripts.waiting_sessions(appointment_id):
            if row.get("transcription_state") != "waiting_for_consent":
                continue
            appointment = Appointment(appointment_id, row["provider_id"], row["patient_id"], True, "in_progress")
            row = {**row, "consent_transcription": "granted", "transcription_state": "off"}
            try:
                self._start(row["provider_id"], appointment, row, request_id, None, None, wait=False)
                started += 1
            except DomainError as exc:
                logger.warning("transcription waiting for consent did not start", extra={"error_code": exc.code})
        return started

    def stop(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> TranscriptionStatus:
        caller, appointment, row = self._control_access(firebase_uid, meeting_id, request_id, "transcription.stop")
        if row.get("transcription_state") not in (*RUNNING, "waiting_for_consent"):
            return self._status(row)  # stopping a stopped one is a no-op
        self._chime.stop_transcription(meeting_id)
        self._transcripts.set_state(
            session_id=row["session_id"], state="off", language=None, engine=None, region=None,
            audit=self._audit(caller.user_id, "transcription.stop", appointment, meeting_id, request_id),
        )  # fmt: skip
        return TranscriptionStatus(meeting_id, "off", row.get("transcription_language"))

    def stop_for_withdrawn_consent(self, appointment: Appointment, actor: str, request_id: str | None) -> list[str]:
        """The patient withdrew transcription consent: live transcription of the appointment stops now.
        The meetings it stopped in (the face stops their transcript-only captures)."""
        stopped: list[str] = []
        for row in self._transcripts.live_transcriptions(appointment.id):
            self._chime.stop_transcription(row["meeting_id"])
            if self._transcripts.set_state(
                session_id=row["session_id"], state="off", language=None, engine=None, region=None,
                only_from=(*RUNNING, "waiting_for_consent"),
                audit=self._audit(actor, "transcription.stop", appointment, row["meeting_id"], request_id,
                                  details={"reason": "consent_withdrawn"}),
            ):  # fmt: skip
                stopped.append(row["meeting_id"])
        return stopped

    def transcribing_sessions(self, appointment_id: str) -> list[Row]:
        """Live meetings of the appointment whose transcription runs (their capture must go on)."""
        return [r for r in self._transcripts.live_transcriptions(appointment_id) if r["transcription_state"] in RUNNING]

    def meeting_ended(self, meeting_id: str) -> None:
        self._transcripts.meeting_ended(meeting_id)

    def is_transcribing(self, firebase_uid: str, meeting_id: str) -> Row | None:
        """The session's row when transcription runs (the face keeps its capture going)."""
        row = self._transcripts.meeting_context(firebase_uid, meeting_id)
        if row and row.get("transcription_state") in RUNNING and row.get("session_status") == "active":
            return row
        return None

    # --- Chime's events ---------------------------------------------------------------------------------
    def on_event(self, *, event_id: str, event_type: str, meeting_id: str, at_ms: int, message: str | None) -> str:
        transition = EVENTS.get(event_type)
        if transition is None:
            return "ignored"
        state, from_states, ordered = transition
        # TranscriptionFailed's message can quote settings, never speech; it is stored, not logged.
        error = f"transcription failed: {message or 'no reason given'}"[:500] if state == "failed" else None
        changed = self._transcripts.apply_event(
            event_id=event_id, meeting_id=meeting_id, state=state, from_states=from_states, at_ms=at_ms,
            ordered=ordered, error=error,
            audit=AuditEntry(None, f"transcription.{state}", None, None, meeting_id, event_id,
                             outcome="failed" if error else "allowed"),
        )  # fmt: skip
        if changed and state == "failed":
            count_failure("transcription_failed")
            metrics.add_metric(name="TranscriptionFailures", unit=MetricUnit.Count, value=1)
        return state if changed else "unchanged"

    # --- the clinical record ------------------------------------------------------------------------------
    def build(self, session_id: str, event_id: str | None = None) -> str:
        """Build (or rebuild: the same files give the same rows) the meeting's transcript from every
        completed capture's transcription-messages file, then its clinical record."""
        self._discard(session_id)  # captures kept only for the transcript keep no media, whatever follows
        context = self._transcripts.build_context(session_id)
        if context is None or context["appointment_erased_at"] is not None or context["transcript_deleted_at"]:
            # Unknown, erased, or past retention: a replayed event never brings a transcript back.
            metrics.add_metric(name="TranscriptsDropped", unit=MetricUnit.Count, value=1)
            return "dropped"
        files = self._files(session_id)
        if not files:
            return "no_transcript"
        results, malformed = [], 0
        for key in files:
            report = parse_transcription_file(self._store.read(key))
            results.extend(report.results)
            malformed += report.malformed_lines
        if malformed:
            count_failure("transcript_malformed_lines")
            metrics.add_metric(name="TranscriptMalformedLines", unit=MetricUnit.Count, value=malformed)
        transcript = assemble(results, self._speakers(context))
        self._transcripts.store(
            session_id=session_id, meeting_id=context["meeting_id"], appointment_id=context["appointment_id"],
            language=context["transcription_language"], transcript=transcript, malformed=malformed,
            captures=len(files), summary_state="pending" if self._summary else "off",
            audit=AuditEntry(None, "transcript.built", context["appointment_id"], context["patient_id"],
                             context["meeting_id"], event_id,
                             details={"segments": len(transcript.segments), "malformed_lines": malformed}),
        )  # fmt: skip
        metrics.add_metric(name="TranscriptsBuilt", unit=MetricUnit.Count, value=1)
        return self.complete(session_id)

    def complete(self, session_id: str) -> str:
        """Medical extraction and the summary draft; what fails is marked incomplete for a later run."""
        context = self._transcripts.build_context(session_id)
        if context is None or context["transcript_deleted_at"] is not None:
            return "dropped"
        segments = [SegmentText(r["sequence"], r["text"]) for r in self._transcripts.segments(session_id)]
        outcome = "complete"
        if context["medical_state"] in ("pending", "incomplete"):
            outcome = self._extract(session_id, context, segments)
        if self._summary and context["summary_state"] in ("pending", "incomplete"):
            self._draft_summary(session_id, context)
        if outcome == "complete" and context.get("ended_at"):
            seconds = time.time() - context["ended_at"].timestamp()
            metrics.add_metric(name="ClinicalRecordSeconds", unit=MetricUnit.Seconds, value=max(0.0, seconds))
        return outcome

    def _extract(self, session_id: str, context: Row, segments: list[SegmentText]) -> str:
        language = context["transcript_language"] or context["transcription_language"] or "en-US"
        if context["consent_ai"] != "granted":
            self._transcripts.mark(session_id=session_id, medical=("skipped", "no AI-processing consent"))
            return "skipped"
        if language not in ENGLISH:
            self._transcripts.mark(session_id=session_id, medical=("skipped", f"language {language} is not English"))
            return "skipped"
        try:
            extraction = self._medical().extract(segments, icd10=self._icd10)
        except DomainError as exc:
            self._transcripts.mark(session_id=session_id, medical=("incomplete", exc.code))
            count_failure("medical_extraction")
            return "incomplete"
        self._transcripts.store_extraction(
            session_id=session_id, extraction=extraction,
            audit=AuditEntry(None, "transcript.medical_extraction", context["appointment_id"], context["patient_id"],
                             context["meeting_id"], None,
                             details={"entities": len(extraction.entities), "icd10": len(extraction.icd10),
                                      "calls": extraction.calls}),
        )  # fmt: skip
        return "complete"

    def _draft_summary(self, session_id: str, context: Row) -> None:
        from videocall.transcripts.summary import EntityText, TurnText

        if context["consent_ai"] != "granted":
            self._transcripts.mark(session_id=session_id, summary=("skipped", "no AI-processing consent"))
            return
        assert self._summary is not None
        turns = [TurnText(r["speaker_role"], r["text"]) for r in self._transcripts.segments(session_id)]
        record = self._transcripts.clinical_record(session_id) or {"entities": []}
        entities = [EntityText(e["category"], e["type"], e["text"], "NEGATION" in (e["traits"] or []))
                    for e in record["entities"]]  # fmt: skip
        try:
            draft = self._summary().draft(turns, entities, language=context["transcription_language"] or "en-US")
        except DomainError as exc:
            self._transcripts.mark(session_id=session_id, summary=("incomplete", exc.code))
            count_failure("clinical_summary")
            return
        self._transcripts.store_summary(
            session_id=session_id, text=draft.text, model=draft.model_id,
            audit=AuditEntry(None, "transcript.summary_drafted", context["appointment_id"], context["patient_id"],
                             context["meeting_id"], None, details={"model": draft.model_id}),
        )  # fmt: skip
        if draft.stop_reason not in (None, "end_turn"):
            # A draft the model did not finish (max_tokens, a guardrail): say so next to it.
            self._transcripts.mark(session_id=session_id, summary=("draft", f"stopped early: {draft.stop_reason}"))

    def complete_unfinished(self) -> dict[str, int]:
        """The reconciler's (and `videocall transcripts complete`'s) pass over incomplete records."""
        done: dict[str, int] = {}
        for row in self._transcripts.unfinished():
            outcome = self.complete(row["session_id"])
            done[outcome] = done.get(outcome, 0) + 1
        return done

    # --- reading ---------------------------------------------------------------------------------------
    def transcript(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, *, after: str | None, limit: int
    ) -> TranscriptPage:
        row = self._transcripts.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.participant(row, meeting_id=meeting_id, action="transcript.view",
                                                     request_id=request_id)  # fmt: skip
        assert row is not None
        controller = is_clinical_controller(caller, appointment, membership_from(row))
        patient_reads = self._for_patient and caller.user_id == appointment.patient_id
        if not (controller or patient_reads):
            # The transcript is for clinical staff (and the patient by setting): others answer as outsiders.
            self._gate.check(self._outsider, caller=caller, action="transcript.view", row=row, meeting_id=meeting_id,
                             request_id=request_id)  # fmt: skip
        start = decode_cursor(after) if after else 0
        limit = max(1, min(limit, MAX_PAGE))
        page = TranscriptPage(meeting_id, row["transcription_state"])
        deleted = row.get("transcript_deleted_at") is not None
        rows = [] if (row.get("transcript_session_id") is None or deleted) else self._transcripts.segments(
            row["session_id"], after=start, limit=limit + 1)  # fmt: skip
        page.segments = [_segment(r) for r in rows[:limit]]
        if len(rows) > limit:
            page.next_cursor = encode_cursor(rows[limit - 1]["sequence"])
        if start == 0:
            page.first_page = {
                "processing": {
                    "transcript": "deleted" if deleted else ("ready" if row.get("transcript_session_id") else "none"),
                    "medical": row.get("medical_state"),
                    "medicalReason": row.get("medical_reason"),
                    "summary": row.get("summary_state"),
                },
                "partialCoverage": row.get("partial_coverage"),
            }
            if controller and row.get("transcript_session_id") and not deleted:
                record = self._transcripts.clinical_record(row["session_id"]) or {}
                page.first_page["entities"] = record.get("entities", [])
                page.first_page["icd10Candidates"] = record.get("icd10", [])
                if caller.user_id == appointment.provider_id:  # the draft note is the provider's to review
                    page.first_page["summary"] = _summary(row)
        self._transcripts_audit(caller, appointment, meeting_id, request_id, row, len(page.segments))
        return page

    def review_summary(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> str:
        caller, appointment, row = self._control_access(
            firebase_uid, meeting_id, request_id, "transcript.summary_review", allow_ended=True
        )
        if caller.user_id != appointment.provider_id:
            raise MeetingNotFound()  # the provider reviews the note
        reviewed = self._transcripts.review_summary(
            session_id=row["session_id"], reviewer=caller.user_id,
            audit=self._audit(caller.user_id, "transcript.summary_review", appointment, meeting_id, request_id),
        )  # fmt: skip
        if reviewed is None:
            raise InvalidRequest("There is no draft summary to review.")
        return str(reviewed["summary_reviewed_at"].isoformat())

    # --- shared ------------------------------------------------------------------------------------------
    def _transcripts_audit(
        self, caller: Caller, appointment: Appointment, meeting_id: str, request_id: str | None, row: Row, n: int
    ) -> None:
        entry = self._audit(caller.user_id, "transcript.view", appointment, meeting_id, request_id,
                            details={"segments": n})  # fmt: skip
        self._transcripts.audit(entry, row.get("session_id"))

    def _speakers(self, context: Row) -> dict[str, Speaker]:
        """attendee id (and "ext:" + ExternalUserId, which outlives a rejoin) -> who and in which role."""
        speakers: dict[str, Speaker] = {}
        for a in context["attendees"]:
            role = ("provider" if a["userId"] == context["provider_id"]
                    else "patient" if a["userId"] == context["patient_id"] else "participant")  # fmt: skip
            speaker = Speaker(a["userId"], role)  # type: ignore[arg-type]
            speakers[a["attendeeId"]] = speaker
            speakers["ext:" + a["externalUserId"]] = speaker
        return speakers

    def _control_access(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, action: str, *, allow_ended: bool = False
    ) -> tuple[Caller, Appointment, Row]:
        row = self._transcripts.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.clinical_control(row, meeting_id=meeting_id, action=action,
                                                          request_id=request_id)  # fmt: skip
        assert row is not None
        if not allow_ended and row["session_status"] in ("ended", "failed"):
            raise MeetingEnded()
        row["meeting_id"] = meeting_id
        return caller, appointment, row

    @staticmethod
    def _outsider() -> Any:
        raise MeetingNotFound()

    @staticmethod
    def _status(row: Row) -> TranscriptionStatus:
        return TranscriptionStatus(row["meeting_id"], row["transcription_state"], row.get("transcription_language"),
                                   row.get("transcription_engine"), row.get("transcription_region"))  # fmt: skip

    @staticmethod
    def _audit(
        actor: str | None, action: str, appointment: Appointment, meeting_id: str, request_id: str | None,
        *, outcome: str = "allowed", details: dict[str, Any] | None = None,
    ) -> AuditEntry:  # fmt: skip
        return AuditEntry(actor, action, appointment.id, appointment.patient_id or None, meeting_id, request_id,
                          outcome=outcome, details=details)  # fmt: skip


def _segment(r: Row) -> dict[str, Any]:
    return {"sequence": r["sequence"], "startMs": r["start_ms"], "endMs": r["end_ms"],
            "speakerUserId": r["speaker_user_id"], "speakerRole": r["speaker_role"], "text": r["text"],
            "confidence": r["confidence"]}  # fmt: skip


def _summary(row: Row) -> dict[str, Any] | None:
    if row.get("summary_state") in (None, "off"):
        return None
    return {
        "state": row["summary_state"],
        "reason": row.get("summary_reason"),
        "text": row.get("summary_text"),
        "model": row.get("summary_model"),
        "machineGenerated": True,
        "reviewed": row["summary_state"] == "reviewed",
        "reviewedBy": row.get("summary_reviewed_by"),
        "reviewedAt": row["summary_reviewed_at"].isoformat() if row.get("summary_reviewed_at") else None,
        "notice": "Draft generated by a model from the transcript; review before use. Not a diagnosis.",
    }
