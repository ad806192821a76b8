"""Chime's EventBridge events → the context that owns each event type.

Delivery is best effort (missing, repeated, late, out of order): every context applies an event
idempotently and order-tolerantly, and the scheduled reconciler (videocall.jobs) catches what was missed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from aws_lambda_powertools.utilities.typing import LambdaContext

from videocall.core.errors import DomainError
from videocall.core.observability import count_failure, logger, metrics, tracer
from videocall.runtime import Runtime, runtime


def _basics(event: dict[str, Any]) -> tuple[dict[str, Any], str, str, int]:
    detail = event.get("detail") or {}
    return detail, str(detail.get("eventType", "")), str(event.get("id", "")), int(detail.get("timestamp") or 0)


def on_meeting_event(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    """`Chime Meeting State Change`."""
    detail, event_type, event_id, at_ms = _basics(event)
    meeting_id = detail.get("meetingId")
    if not meeting_id:
        return {"ignored": event_type}
    if event_type == "chime:MeetingStarted":
        # Once per meeting (a retried create makes none): ring the appointment's other participants.
        rang = rt.notifications.meeting_started(
            meeting_id=meeting_id, appointment_id=detail.get("externalMeetingId"), at_ms=at_ms
        )
        return {"handled": event_type, "rang": rang}
    if event_type == "chime:MeetingEnded":
        changed = rt.lifecycle.record_meeting_ended(meeting_id, at_ms, event_id)
        rt.transcripts.meeting_ended(meeting_id)
        # Chime stops the capture with the meeting; stopping it ourselves starts the concatenation
        # at once and records why (a no-op when nothing runs).
        stopped = rt.recordings.stop_for_meeting(meeting_id, "meeting_ended", event_id)
        rt.notifications.meeting_ended(meeting_id=meeting_id)  # stop ringing whoever did not answer
        logger.info("meeting ended event", extra={"meeting_id": meeting_id, "changed": changed, "stopped": stopped})
        return {"handled": event_type, "changed": changed, "recordingsStopped": stopped}
    if event_type.startswith("chime:Transcription"):
        outcome = rt.transcripts.on_event(event_id=event_id, event_type=event_type, meeting_id=meeting_id,
                                          at_ms=at_ms, message=detail.get("message"))  # fmt: skip
        if outcome == "failed":  # a capture that ran only for the transcript has no reason to go on
            rt.recordings.stop_transcript_capture(meeting_id, None, "transcription_failed", event_id)
        return {"handled": event_type, "outcome": outcome}
    if event_type.startswith("chime:Attendee") and detail.get("attendeeId"):
        outcome = rt.presence.on_attendee_event(
            event_id=event_id, event_type=event_type, meeting_id=meeting_id, attendee_id=detail["attendeeId"],
            external_user_id=str(detail.get("externalUserId", "")), network_type=detail.get("networkType"),
            at_ms=at_ms,
        )  # fmt: skip
        if event_type == "chime:AttendeeJoined":  # answered: stop the ring on all of that user's devices
            rt.notifications.attendee_joined(meeting_id=meeting_id, attendee_id=detail["attendeeId"])
        return {"handled": event_type, "outcome": outcome}
    return {"ignored": event_type}


def on_pipeline_event(rt: Runtime, event: dict[str, Any]) -> dict[str, Any]:
    """`Chime Media Pipeline State Change`."""
    detail, event_type, event_id, at_ms = _basics(event)
    pipeline_id = detail.get("mediaPipelineId")
    if not pipeline_id:
        return {"ignored": event_type}
    outcome, completed = rt.recordings.on_pipeline_event(
        event_id=event_id, event_type=event_type, pipeline_id=pipeline_id, at_ms=at_ms
    )
    logger.info("pipeline event", extra={"event_type": event_type, "outcome": outcome,
                                          "meeting_id": detail.get("meetingId")})  # fmt: skip
    result: dict[str, Any] = {"handled": event_type, "outcome": outcome}
    transcripts = captures_completed(rt, [completed] if completed else [], event_id)
    if transcripts:
        result["transcripts"] = transcripts
    return result


def captures_completed(rt: Runtime, sessions: list[str], event_id: str | None) -> dict[str, str]:
    """A capture's files landed: the meeting's transcript (if any) is built from them, then the clinical
    record; a capture kept only for the transcript loses its media. Per session: outcome."""
    built: dict[str, str] = {}
    for session_id in dict.fromkeys(sessions):
        try:
            built[session_id] = rt.transcripts.build(session_id, event_id)
        except (DomainError, psycopg.DataError) as exc:
            # One bad transcript file never loops the event or blocks the others; the media is gone anyway.
            logger.warning("transcript not built", extra={"session_id": session_id, "error_type": type(exc).__name__})
            count_failure("transcript_build")
            built[session_id] = "failed"
    return built


def lambda_entry(dispatch: Callable[[Runtime, dict[str, Any]], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The Lambda entry point of an event function: logging context, tracing, metrics, then `dispatch`."""

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return dispatch(runtime(), event)

    return handler
