"""The recording rules: start, stop, list with download links, and the pipeline events.

Who: clinical controls belong to the appointment's provider and provider-role staff the provider
added (videocall.core.access); consent: only while the patient has granted recording.

Budget (database round trips; pipeline calls):
- start, new recording:  context, claim, CreateMediaCapturePipeline + CreateMediaConcatenationPipeline,
                         activate                                                     (3 DB, 2 calls)
- start, running:        context                                                      (1 DB)
- stop:                  context, DeleteMediaCapturePipeline, stop+audit              (2 DB, 1 call)
- list:                  context, recordings with artifacts, one audit row per link   (3 DB, 0 calls)

Start, stop, start makes two recordings: each capture has its own ClientRequestToken
(`<meeting id>-r<sequence>`), so a retried start reuses its pipeline and a new start makes a new one.
"""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

from videocall.core.access import (
    Appointment,
    Caller,
    Membership,
    is_clinical_controller,
    may_download_recordings,
)
from videocall.core.audit import AuditEntry
from videocall.core.context import AccessGate, membership_from
from videocall.core.db import Row
from videocall.core.errors import (
    ConsentRequired,
    CreateInProgress,
    DomainError,
    MeetingEnded,
    MeetingNotFound,
    RecordingLimitReached,
    RecordingUnavailable,
)
from videocall.core.observability import MetricUnit, count_failure, logger, metrics
from videocall.core.storage import ObjectStore
from videocall.meetings.service import MeetingJoin
from videocall.recordings.models import RecordingStatus, RecordingsView
from videocall.recordings.pipelines import PipelinesGateway
from videocall.recordings.repository import RUNNING, ArtifactRecord, RecordingRepository

MEDIA_KINDS = frozenset({"audio", "video", "content", "composited-video"})
FILE_EXTENSIONS = {"audio": ".mp4", "video": ".mp4", "content": ".mp4", "composited-video": ".mp4"}

# Pipeline events: the recording state each moves to, from which states, and whether ordering matters
# (transitions that can go back and forth compare event timestamps; forward-only ones never go back).
CAPTURE_EVENTS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "chime:MediaPipelineInProgress": ("recording", ("starting", "interrupted"), True),
    "chime:MediaPipelineResumed": ("recording", ("interrupted",), True),
    "chime:MediaPipelineTemporaryFailure": ("interrupted", ("starting", "recording"), True),
    "chime:MediaPipelinePermanentFailure": ("failed", RUNNING, False),
    "chime:MediaPipelineDeleted": ("processing", RUNNING, False),
}


def recording_prefix(appointment_id: str, meeting_id: str) -> str:
    """Per meeting, under its appointment: retention and erasure find everything by prefix."""
    return f"recordings/{appointment_id}/{meeting_id}"


def artifact_file_name(meeting_id: str, sequence: int, kind: str, key: str) -> str:
    """What a download is saved as: <meeting>-r<sequence>-<kind>.<the object's extension>."""
    return f"{meeting_id}-r{sequence}-{kind}{PurePosixPath(key).suffix}"


def summary(row: Row) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "recordingId": row["recording_id"],
        "sequence": row["sequence"],
        "state": row["state"],
        "startedAt": iso(row["started_at"]),
        "stoppedAt": iso(row["stopped_at"]),
        "completedAt": iso(row.get("completed_at")),
        "stopReason": row.get("stop_reason"),
    }


class RecordingService:
    def __init__(
        self, recordings: RecordingRepository, pipelines: PipelinesGateway, store: ObjectStore, gate: AccessGate,
        *, links_for_patient: bool = False,
    ) -> None:  # fmt: skip
        self._recordings = recordings
        self._pipelines = pipelines
        self._store = store
        self._gate = gate
        self._links_for_patient = links_for_patient

    # --- start -----------------------------------------------------------------------------------
    def start(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> RecordingStatus:
        caller, appointment, row = self._control_access(firebase_uid, meeting_id, request_id, "recording.start")
        return self._start(caller.user_id, appointment, row, request_id)

    def start_on_create(self, join: MeetingJoin, request_id: str | None) -> RecordingStatus:
        """create with enableRecording: the meeting exists whatever happens here; the answer says whether
        recording is on, waiting for the patient's consent (it starts when consent is granted), or why not.
        Uses the caller and appointment create already read: no access round trip of its own."""
        meeting_id = join.meeting["MeetingId"]
        caller, appointment = join.caller, join.appointment
        assert caller is not None and appointment is not None
        if not is_clinical_controller(caller, appointment, Membership()):
            return RecordingStatus(meeting_id, "off", reason="clinician_only")
        session = {
            "session_id": join.session_id, "session_status": "active", "meeting_id": meeting_id,
            "meeting_arn": join.meeting.get("MeetingArn"), "session_recording_state": "off", "state": None,
            "consent_recording": "granted",  # checked by the claim itself
        }  # fmt: skip
        try:
            return self._start(caller.user_id, appointment, session, request_id, wait_for_consent=True)
        except ConsentRequired:
            return RecordingStatus(meeting_id, "waiting_for_consent", reason="consent_required")
        except (RecordingLimitReached, RecordingUnavailable) as exc:
            return RecordingStatus(meeting_id, "off", reason=exc.code)

    def start_waiting(self, appointment_id: str, request_id: str | None) -> int:
        """Consent was granted: start the recordings a clinician asked for while it was missing.
        The provider is recorded as the one who started them (they asked for it at create)."""
        started = 0
        for waiting in self._recordings.waiting_for_consent(appointment_id):
            row = self._recordings.session_by_id(waiting["session_id"])
            if row is None:
                continue
            appointment = Appointment(appointment_id, row["provider_id"], row["patient_id"], True, "in_progress")
            try:
                self._start(row["provider_id"], appointment, row, request_id)
                started += 1
            except DomainError as exc:
                logger.warning("recording waiting for consent did not start", extra={"error_code": exc.code})
        return started

    def _start(
        self, actor: str, appointment: Appointment, row: Row, request_id: str | None, *, wait_for_consent: bool = False
    ) -> RecordingStatus:
        meeting_id = row.get("meeting_id") or ""
        if row["session_status"] != "active":
            raise MeetingEnded()
        if row["state"] in RUNNING and row["state"] != "starting" and row.get("keep_media", True):
            return RecordingStatus(meeting_id, row["session_recording_state"], summary(row))  # already on
        if row["consent_recording"] != "granted":
            raise ConsentRequired("The patient has not granted consent to record this appointment.")
        claim = self._claim(actor, appointment, row, request_id, purpose="recording", wait=wait_for_consent)
        if claim["outcome"] == "running" and not claim["keep_media"] and claim["capture_pipeline_id"]:
            # A capture kept only for the transcript runs: a recording is a new capture that keeps its
            # media (the transcript continues in it), so the earlier one's media is still never kept.
            self._stop(claim, actor, "recording_started", appointment, request_id)
            claim = self._claim(actor, appointment, row, request_id, purpose="recording", wait=wait_for_consent)
        if claim["outcome"] == "no_consent":
            raise ConsentRequired("The patient has not granted consent to record this appointment.")
        if claim["outcome"] == "running" and claim["state"] == "starting" and claim["capture_pipeline_id"] is None:
            # Another request (or a retry of this one) is creating the pipelines: same token, same pipelines.
            return self._create_pipelines(actor, appointment, row, claim, request_id)
        if claim["state"] != "starting":
            return RecordingStatus(
                meeting_id, "on" if claim["state"] == "recording" else claim["state"], summary(claim)
            )
        return self._create_pipelines(actor, appointment, row, claim, request_id)

    def _claim(
        self, actor: str | None, appointment: Appointment, row: Row, request_id: str | None, *, purpose: str,
        wait: bool,
    ) -> Row:  # fmt: skip
        meeting_id = row["meeting_id"]
        for _ in range(3):
            claim = self._recordings.claim(
                session_id=row["session_id"], meeting_id=meeting_id, appointment_id=appointment.id,
                prefix=recording_prefix(appointment.id, meeting_id), started_by=actor, wait_for_consent=wait,
                purpose=purpose,
                audit=self._audit(actor, f"{'recording' if purpose == 'recording' else 'transcript_capture'}.start",
                                  appointment, meeting_id, request_id),
            )  # fmt: skip
            if claim is not None:
                return claim
        raise CreateInProgress("A capture is being started; retry shortly.")

    def start_capture_for_transcript(
        self, actor: str | None, appointment: Appointment, session: Row, request_id: str | None
    ) -> dict[str, Any]:
        """The transcript reaches S3 only through a capture: start one that keeps no media, unless a
        capture already runs (a recording carries the transcript too). Needs transcription consent."""
        claim = self._claim(actor, appointment, session, request_id, purpose="transcription", wait=False)
        if claim["outcome"] == "no_consent":
            raise ConsentRequired("The patient has not granted consent to transcribe this appointment.")
        if claim["outcome"] == "claimed" or (claim["state"] == "starting" and not claim["capture_pipeline_id"]):
            self._create_pipelines(actor, appointment, session, claim, request_id)
        return summary(claim)

    def stop_transcript_capture(self, meeting_id: str, actor: str | None, reason: str, request_id: str | None) -> int:
        """Transcription stopped: a capture that ran only for the transcript has no reason to go on."""
        stopped = 0
        for row in self._recordings.running(meeting_id=meeting_id):
            if row["keep_media"]:
                continue
            appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
            try:
                if self._stop(row, actor, reason, appointment, request_id):
                    stopped += 1
            except DomainError as exc:
                logger.info("transcript capture not stopped now", extra={"error_code": exc.code})
        return stopped

    def stop_transcript_captures_of(self, appointment: Appointment, actor: str | None, request_id: str | None) -> int:
        """Transcription consent withdrawn: every capture of the appointment kept only for a transcript stops."""
        stopped = 0
        for row in self._recordings.running(appointment_id=appointment.id):
            if row["keep_media"]:
                continue
            try:
                if self._stop(row, actor, "consent_withdrawn", appointment, request_id):
                    stopped += 1
            except DomainError as exc:
                logger.info("transcript capture not stopped now", extra={"error_code": exc.code})
        return stopped

    def transcript_files(self, session_id: str) -> list[str]:
        return [r["s3_key"] for r in self._recordings.transcript_files(session_id)]

    def discard_media(self, session_id: str | None) -> int:
        """Captures kept only for the transcript keep no media: once finished (completed or failed,
        whatever became of the transcript), their audio and video go, every version. The transcript's
        own files (transcription messages) and the data channels stay."""
        discarded = 0
        for row in self._recordings.media_to_discard(session_id):
            appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
            for kind in MEDIA_KINDS:
                self._store.delete_all_versions(f"{row['s3_prefix']}/capture/{kind}/")
                self._store.delete_all_versions(f"{row['s3_prefix']}/concatenated/{kind}/")
            self._recordings.media_discarded(
                recording_id=row["recording_id"], kinds=tuple(MEDIA_KINDS),
                audit=self._audit(None, "transcript_capture.media_deleted", appointment, row["meeting_id"], None,
                                  details={"sequence": row["sequence"]}),
            )  # fmt: skip
            discarded += 1
        return discarded

    def _create_pipelines(
        self, actor: str | None, appointment: Appointment, session: Row, claim: Row, request_id: str | None
    ) -> RecordingStatus:
        meeting_id = claim["meeting_id"]
        capture = None
        try:
            audio_only = not claim.get("keep_media", True)  # a transcript needs no video
            capture = self._pipelines.start_capture(
                meeting_arn=session["meeting_arn"], meeting_id=meeting_id, prefix=claim["s3_prefix"],
                token=claim["client_request_token"], audio_only=audio_only,
            )  # fmt: skip
            concatenation = self._pipelines.start_concatenation(
                capture=capture,
                prefix=claim["s3_prefix"],
                token=claim["client_request_token"].replace("-r", "-c", 1),
                audio_only=audio_only,
            )
        except DomainError as exc:
            if capture is not None:
                self._pipelines.stop_capture(capture.id)
            self._recordings.fail(
                recording_id=claim["recording_id"], error=f"pipeline create failed: {exc.code}",
                audit=self._audit(actor, "recording.start", appointment, meeting_id, request_id, outcome="failed",
                                  details={"error": exc.code, "sequence": claim["sequence"]}),
            )  # fmt: skip
            count_failure("recording_start")
            raise
        try:
            activated = self._recordings.activate(
                recording_id=claim["recording_id"], capture=capture, concatenation=concatenation
            )
        except DomainError:
            # The pipelines exist but the database could not record them: never leave a capture running
            # that nothing knows of (the row stays 'starting'; the reconciler settles it).
            self._pipelines.stop_capture(capture.id)
            raise
        if activated is not None and not activated["consented"]:
            # Consent was withdrawn while the pipelines were being created: stop at once.
            self._stop(activated, None, "consent_withdrawn", appointment, request_id)
            raise ConsentRequired("The patient withdrew consent while the recording was starting; it was stopped.")
        metrics.add_metric(name="RecordingsStarted", unit=MetricUnit.Count, value=1)
        logger.info("recording started", extra={"meeting_id": meeting_id, "sequence": claim["sequence"]})
        state = activated["state"] if activated else "recording"
        return RecordingStatus(meeting_id, "on" if state == "recording" else state, summary(activated or claim))

    # --- stop ------------------------------------------------------------------------------------
    def stop(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> RecordingStatus:
        caller, appointment, row = self._control_access(firebase_uid, meeting_id, request_id, "recording.stop")
        if row["state"] not in RUNNING:
            # Stopping a stopped recording is a no-op.
            return RecordingStatus(
                meeting_id, row["session_recording_state"], summary(row) if row["recording_id"] else None
            )
        stopped = self._stop(row, caller.user_id, "stopped", appointment, request_id)
        return RecordingStatus(meeting_id, "off", summary(stopped) if stopped else None)

    def stop_for_withdrawn_consent(self, appointment: Appointment, actor: str, request_id: str | None) -> int:
        """The patient withdrew recording consent: every running recording of the appointment stops now.
        One still being started stops itself when it finds consent gone (activate)."""
        stopped = 0
        for row in self._recordings.running(appointment_id=appointment.id):
            if row["state"] == "starting" and not row["capture_pipeline_id"] and not row["start_stale"]:
                continue  # a live start: it re-checks consent when it activates, and stops itself
            if self._stop(row, actor, "consent_withdrawn", appointment, request_id):
                stopped += 1
        return stopped

    def stop_for_meeting(self, meeting_id: str, reason: str, event_id: str | None = None) -> int:
        """The meeting ended (or is being ended by the system): stop its capture so the concatenation runs.
        A start still in flight is left to finish (it stops itself when it finds the meeting gone) or to
        the reconciler; this never raises for it, so one stuck start cannot block events or jobs."""
        stopped = 0
        for row in self._recordings.running(meeting_id=meeting_id):
            appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
            try:
                if self._stop(row, None, reason, appointment, event_id):
                    stopped += 1
            except DomainError as exc:  # a start in flight, or Chime unavailable: the reconciler settles it
                logger.info("recording not stopped now; left to the reconciler",
                            extra={"meeting_id": meeting_id, "error_code": exc.code})  # fmt: skip
        return stopped

    def _stop_orphan(self, row: Row) -> None:
        """A start that died between Chime and the database: Chime may run a capture nothing knows of.
        Asking again with the same ClientRequestToken returns it (idempotent), and it is stopped.
        If the first call never reached Chime, this starts and at once stops a capture of a few seconds."""
        capture = self._pipelines.start_capture(
            meeting_arn=row["meeting_arn"], meeting_id=row["meeting_id"], prefix=row["s3_prefix"],
            token=row["client_request_token"],
        )  # fmt: skip
        self._pipelines.stop_capture(capture.id)
        row["capture_pipeline_id"] = capture.id

    def _stop(
        self, row: Row, actor: str | None, reason: str, appointment: Appointment, request_id: str | None
    ) -> Row | None:
        if row["state"] == "starting" and not row["capture_pipeline_id"]:
            if not row.get("start_stale") or not row.get("meeting_arn"):
                raise CreateInProgress("The recording is still starting; retry shortly.")
            self._stop_orphan(row)
        if row["capture_pipeline_id"]:
            self._pipelines.stop_capture(row["capture_pipeline_id"])
        stopped = self._recordings.stop(
            recording_id=row["recording_id"], stopped_by=actor, reason=reason,
            audit=self._audit(actor, "recording.stop", appointment, row["meeting_id"], request_id,
                              details={"reason": reason, "sequence": row["sequence"]}),
        )  # fmt: skip
        if stopped:
            metrics.add_metric(name="RecordingsStopped", unit=MetricUnit.Count, value=1)
        return stopped

    # --- list, with download links ------------------------------------------------------------------
    def recordings(self, firebase_uid: str, meeting_id: str, request_id: str | None) -> RecordingsView:
        row = self._recordings.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.participant(row, meeting_id=meeting_id, action="recording.list",
                                                     request_id=request_id)  # fmt: skip
        assert row is not None
        with_links = may_download_recordings(
            caller, appointment, membership_from(row), patient_allowed=self._links_for_patient
        )
        view = RecordingsView(meeting_id, row["session_recording_state"])
        audits: list[AuditEntry] = []
        for rec in self._recordings.recordings_of_session(row["session_id"]):
            item = summary(rec)
            item["artifacts"] = []
            for artifact in rec["artifacts"]:
                shown: dict[str, Any] = {k: artifact[k] for k in ("kind", "sizeBytes", "durationMs")}
                if with_links and rec["state"] == "completed":
                    name = artifact_file_name(meeting_id, rec["sequence"], artifact["kind"], artifact["key"])
                    shown["downloadUrl"] = self._store.download_link(artifact["key"], name)
                    audits.append(self._audit(caller.user_id, "recording.download_link", appointment, meeting_id,
                                              request_id, details={"recording_id": rec["recording_id"],
                                                                   "kind": artifact["kind"]}))  # fmt: skip
                item["artifacts"].append(shown)
            view.recordings.append(item)
        self._recordings.audit_many(audits, row["session_id"])
        if audits:
            view.links_expire_in_seconds = self._store.link_seconds
            metrics.add_metric(name="RecordingLinksIssued", unit=MetricUnit.Count, value=len(audits))
        return view

    # --- pipeline events (EventBridge `Chime Media Pipeline State Change`) ---------------------------
    def on_pipeline_event(
        self, *, event_id: str, event_type: str, pipeline_id: str, at_ms: int
    ) -> tuple[str, str | None]:
        """Pipeline events do not say which kind of pipeline they are about: match the stored ids.
        The outcome, and the session whose capture this event completed (its transcript is built next)."""
        outcome = self._pipeline_event(event_id=event_id, event_type=event_type, pipeline_id=pipeline_id, at_ms=at_ms)
        if isinstance(outcome, tuple):
            return outcome
        return outcome, None

    def _pipeline_event(self, *, event_id: str, event_type: str, pipeline_id: str, at_ms: int) -> str | tuple[str, str]:
        row = self._recordings.by_pipeline(pipeline_id)
        if row is None:
            return "unknown_pipeline"
        appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
        if row["kind"] == "capture":
            transition = CAPTURE_EVENTS.get(event_type)
            if transition is None:
                return "ignored"
            state, from_states, ordered = transition
            error = "pipeline permanent failure" if state == "failed" else None
            changed = self._recordings.apply_event(
                recording_id=row["recording_id"], event_id=event_id, state=state, from_states=from_states,
                at_ms=at_ms, ordered=ordered, error=error,
                audit=self._audit(None, f"recording.{state}", appointment, row["meeting_id"], event_id,
                                  outcome="failed" if error else "allowed", details={"sequence": row["sequence"]}),
            )  # fmt: skip
            if changed and state == "failed":
                count_failure("recording_failed")
                metrics.add_metric(name="RecordingFailures", unit=MetricUnit.Count, value=1)
            return state if changed else "unchanged"
        # The concatenation pipeline: done when it is deleted (stopped); failed on permanent failure.
        if event_type == "chime:MediaPipelinePermanentFailure":
            changed = self._recordings.apply_event(
                recording_id=row["recording_id"], event_id=event_id, state="failed",
                from_states=("processing", *RUNNING), at_ms=at_ms, ordered=False,
                error="concatenation permanent failure",
                audit=self._audit(None, "recording.failed", appointment, row["meeting_id"], event_id,
                                  outcome="failed", details={"sequence": row["sequence"]}),
            )  # fmt: skip
            if changed:
                count_failure("recording_failed")
                metrics.add_metric(name="RecordingFailures", unit=MetricUnit.Count, value=1)
            return "failed" if changed else "unchanged"
        if event_type == "chime:MediaPipelineDeleted":
            if self.collect_artifacts(row, event_id):
                return "completed", row["session_id"]
            return "waiting_for_artifacts"
        return "ignored"

    def collect_artifacts(self, row: Row, event_id: str | None) -> bool:
        """List what the concatenation wrote (never guess file names) and record it."""
        if row["state"] in ("completed", "deleted", "failed"):
            return row["state"] == "completed"
        prefix = f"{row['s3_prefix']}/concatenated/"
        objects = self._store.list(prefix)
        if not objects:
            return False
        duration = None
        if row.get("stopped_at") and row.get("started_at"):
            duration = int((row["stopped_at"] - row["started_at"]).total_seconds() * 1000)
        artifacts = [
            ArtifactRecord(
                s3_key=o.key, kind=o.key[len(prefix):].split("/", 1)[0], size_bytes=o.size,
                duration_ms=duration if o.key[len(prefix):].split("/", 1)[0] in MEDIA_KINDS else None,
            )
            for o in objects
        ]  # fmt: skip
        appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
        done = self._recordings.complete(
            recording_id=row["recording_id"], artifacts=artifacts, url=f"s3://{self._store.bucket}/{row['s3_prefix']}/",
            audit=self._audit(None, "recording.completed", appointment, row["meeting_id"], event_id,
                              details={"sequence": row["sequence"], "artifacts": len(artifacts)}),
        )  # fmt: skip
        if done:
            metrics.add_metric(name="RecordingsCompleted", unit=MetricUnit.Count, value=1)
            if row.get("stopped_at"):
                lag = time.time() - row["stopped_at"].timestamp()
                metrics.add_metric(name="RecordingProcessingSeconds", unit=MetricUnit.Seconds, value=max(0.0, lag))
        return done

    # --- the reconciler: recordings stuck in a state too long ----------------------------------------
    def sweep_unfinished(self, *, stuck_seconds: int) -> tuple[dict[str, int], list[str]]:
        """Counts by outcome, and the sessions whose capture this sweep completed."""
        outcome = {"completed": 0, "failed": 0, "still_processing": 0}
        completed: list[str] = []
        for row in self._recordings.unfinished(older_than_seconds=stuck_seconds):
            appointment = Appointment(row["appointment_id"], "", row["patient_id"], True, "in_progress")
            if row["state"] == "processing" and self.collect_artifacts(row, None):
                outcome["completed"] += 1
                completed.append(row["session_id"])
                continue
            status = self._pipelines.status(row["capture_pipeline_id"]) if row["capture_pipeline_id"] else None
            if row["state"] == "processing" and status in ("Stopping",):
                self._recordings.touch(row["recording_id"])
                outcome["still_processing"] += 1
                continue
            if row["state"] == "starting":
                # Activation never happened (the function died between Chime and the database): stop
                # whatever Chime may be capturing under this start's token, then fail the row.
                try:
                    self._stop_orphan(row)
                except DomainError as exc:
                    logger.warning("could not settle a stuck start", extra={"error_code": exc.code})
                    continue
                self._recordings.fail(
                    recording_id=row["recording_id"], error="stuck in starting",
                    audit=self._audit(None, "recording.failed", appointment, row["meeting_id"], None,
                                      outcome="failed", details={"stuck_in": "starting", "sequence": row["sequence"]}),
                )  # fmt: skip
            else:
                self._fail_processing(row, appointment)
            outcome["failed"] += 1
        if outcome["failed"]:
            count_failure("recording_stuck")
            metrics.add_metric(name="RecordingFailures", unit=MetricUnit.Count, value=outcome["failed"])
        return outcome, completed

    def _fail_processing(self, row: Row, appointment: Appointment) -> None:
        self._recordings.apply_event(
            recording_id=row["recording_id"], event_id=f"sweep-{row['recording_id']}-{int(time.time())}",
            state="failed", from_states=("processing",), at_ms=int(time.time() * 1000), ordered=False,
            error="no artifacts after stop",
            audit=self._audit(None, "recording.failed", appointment, row["meeting_id"], None, outcome="failed",
                              details={"stuck_in": "processing", "sequence": row["sequence"]}),
        )  # fmt: skip

    # --- shared ------------------------------------------------------------------------------------
    def _control_access(
        self, firebase_uid: str, meeting_id: str, request_id: str | None, action: str
    ) -> tuple[Caller, Appointment, Row]:
        row = self._recordings.meeting_context(firebase_uid, meeting_id)
        caller, appointment = self._gate.clinical_control(row, meeting_id=meeting_id, action=action,
                                                          request_id=request_id)  # fmt: skip
        assert row is not None
        if row["session_status"] in ("ended", "failed"):
            raise MeetingEnded()
        if row["session_status"] != "active":
            raise MeetingNotFound()
        row["meeting_id"] = meeting_id
        return caller, appointment, row

    @staticmethod
    def _audit(
        actor: str | None, action: str, appointment: Appointment, meeting_id: str, request_id: str | None,
        *, outcome: str = "allowed", details: dict[str, Any] | None = None,
    ) -> AuditEntry:  # fmt: skip
        return AuditEntry(actor, action, appointment.id, appointment.patient_id or None, meeting_id, request_id,
                          outcome=outcome, details=details)  # fmt: skip
