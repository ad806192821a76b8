"""The scheduled jobs, composed over the contexts.

reconcile (every minute):
1. meetings kept alive by a capture pipeline that nobody has been connected to for the grace period
   (EMPTY_MEETING_GRACE_SECONDS, longer than a network switch): stop the capture, end the meeting;
2. live sessions checked against Chime (GetMeeting, least recently checked first, at a rate under
   Chime's API limit): NotFound = Chime ended it; close the session, stop its recording;
3. recordings stuck in 'starting' or 'processing' too long: collect artifacts that did land, fail the rest.
apply_retention (daily): delete content past retention, except under a legal hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from videocall.core.errors import DomainError
from videocall.core.observability import MetricUnit, logger, metrics, tracer
from videocall.runtime import Runtime, runtime


def reconcile(rt: Runtime) -> dict[str, Any]:
    """Each meeting is settled on its own: one that fails (Chime or S3 unavailable for it) is logged and
    retried next minute; it never stops the others."""
    from videocall.events import captures_completed

    s = rt.settings
    stuck, completed = rt.recordings.sweep_unfinished(stuck_seconds=s.recording_stuck_seconds)
    built = captures_completed(rt, completed, None)
    rt.recordings.discard_media(None)  # transcript-only captures that failed or were missed keep no media
    records = rt.transcripts.complete_unfinished()
    emptied = 0
    for row in rt.presence.left_empty(s.empty_meeting_grace_seconds):
        try:
            rt.recordings.stop_for_meeting(row["meeting_id"], "meeting_empty")
            if rt.lifecycle.end_by_system(row["meeting_id"], "empty"):
                emptied += 1
        except DomainError as exc:
            logger.warning("could not end an empty meeting", extra={"meeting_id": row["meeting_id"],
                                                                    "error_code": exc.code})  # fmt: skip
    checked = rt.lifecycle.reconcile(limit=s.reconcile_batch, calls_per_second=s.reconcile_calls_per_second)
    for meeting_id in checked.pop("closed_meetings"):
        try:
            rt.recordings.stop_for_meeting(meeting_id, "meeting_ended")
        except DomainError as exc:
            logger.warning("could not stop a closed meeting's recording",
                           extra={"meeting_id": meeting_id, "error_code": exc.code})  # fmt: skip
    outcome = {"endedEmpty": emptied, **checked, "recordings": stuck, "transcriptsBuilt": len(built),
               "clinicalRecords": records}  # fmt: skip
    if emptied:
        metrics.add_metric(name="MeetingsEndedEmpty", unit=MetricUnit.Count, value=emptied)
    logger.info("reconciled", extra={"outcome": outcome})
    return outcome


def apply_retention(rt: Runtime) -> dict[str, int]:
    return rt.privacy.apply_retention()


def lambda_entry(job: Callable[[Runtime], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The Lambda entry point of a scheduled job."""

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return job(runtime())

    return handler
