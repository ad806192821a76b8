"""Presence from Chime's attendee events (AttendeeJoined / Left / Dropped / Deleted).

The media pipeline joins a meeting as an attendee of its own (ExternalUserId prefix `aws:`, shown as
`MediaPipeline...` in some guides): it is told apart from people and never counts as present.
"""

from __future__ import annotations

from videocall.core.db import Row
from videocall.core.observability import MetricUnit, logger, metrics
from videocall.presence.repository import PresenceRepository

ATTENDEE_EVENTS = {
    "chime:AttendeeJoined": "joined",
    "chime:AttendeeLeft": "left",
    "chime:AttendeeDropped": "dropped",
    "chime:AttendeeDeleted": "deleted",
}
PIPELINE_PREFIXES = ("aws:", "mediapipeline")


def is_pipeline_attendee(external_user_id: str) -> bool:
    return external_user_id.lower().startswith(PIPELINE_PREFIXES)


class PresenceService:
    def __init__(self, presence: PresenceRepository) -> None:
        self._presence = presence

    def on_attendee_event(
        self, *, event_id: str, event_type: str, meeting_id: str, attendee_id: str, external_user_id: str,
        network_type: str | None, at_ms: int,
    ) -> str:  # fmt: skip
        state = ATTENDEE_EVENTS.get(event_type)
        if state is None:
            return "ignored"
        pipeline = is_pipeline_attendee(external_user_id)
        changed = self._presence.apply(
            event_id=event_id, meeting_id=meeting_id, attendee_id=attendee_id, external_user_id=external_user_id,
            is_pipeline=pipeline, state=state, at_ms=at_ms, network_type=network_type,
        )  # fmt: skip
        if changed is None:
            return "unchanged"
        if state == "dropped" and not pipeline:
            metrics.add_metric(name="AttendeesDropped", unit=MetricUnit.Count, value=1)
        if changed["session_id"]:
            summary = self._presence.refresh_session(
                session_id=changed["session_id"], meeting_id=meeting_id, at_ms=at_ms
            )
            if summary and summary["empty_since"] is not None:
                logger.info("meeting has nobody connected", extra={"meeting_id": meeting_id})
        return state

    def left_empty(self, grace_seconds: int) -> list[Row]:
        return self._presence.left_empty(grace_seconds=grace_seconds)
