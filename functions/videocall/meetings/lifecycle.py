"""The call's life outside any request: Chime's meeting events, meetings the system ends, and the
reconciler that checks what the database thinks is live against Chime.

Separate from MeetingService (the API's rules): nobody is calling here; the actor is Chime or the
system, and every change is audited as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from videocall.core.audit import AuditEntry
from videocall.core.errors import DomainError
from videocall.core.observability import MetricUnit, logger, metrics
from videocall.meetings.chime import ChimeGateway
from videocall.meetings.repository import SessionRepository


class MeetingLifecycle:
    def __init__(
        self, sessions: SessionRepository, chime: ChimeGateway, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._sessions = sessions
        self._chime = chime
        self._sleep = sleep

    def record_meeting_ended(self, meeting_id: str, ended_at_ms: int, event_id: str | None) -> bool:
        """chime:MeetingEnded (DeleteMeeting, auto-end, 24 h): the session is over. Idempotent."""
        return self._ended(meeting_id, ended_at_ms, "meeting.ended_by_chime", event_id)

    def end_by_system(self, meeting_id: str, reason: str) -> bool:
        """End a meeting nobody is in any more (its capture pipeline keeps it alive otherwise)."""
        self._chime.delete_meeting(meeting_id)
        return self._ended(meeting_id, int(time.time() * 1000), f"meeting.ended_{reason}", None)

    def reconcile(self, *, limit: int, calls_per_second: float) -> dict[str, Any]:
        """GetMeeting for live sessions, least recently checked first, at a rate under Chime's limit;
        NotFound means Chime ended the meeting (a missed MeetingEnded event): close the session."""
        checked = 0
        closed: list[str] = []
        interval = 1.0 / calls_per_second if calls_per_second > 0 else 0.0
        for row in self._sessions.live_sessions_to_reconcile(limit):
            if checked:
                self._sleep(interval)
            checked += 1
            try:
                gone = not self._chime.meeting_exists(row["meeting_id"])
            except DomainError as exc:  # Chime unavailable for this one: checked again on a later run
                logger.warning(
                    "reconcile check failed", extra={"meeting_id": row["meeting_id"], "error_code": exc.code}
                )
                continue
            if gone and self._ended(row["meeting_id"], int(time.time() * 1000), "meeting.ended_by_chime", None):
                closed.append(row["meeting_id"])
                logger.info("reconciler closed a meeting Chime had ended", extra={"meeting_id": row["meeting_id"]})
        return {"checked": checked, "closed": len(closed), "closed_meetings": closed}

    def _ended(self, meeting_id: str, ended_at_ms: int, action: str, event_id: str | None) -> bool:
        seconds = self._sessions.end_session_by_meeting(
            meeting_id=meeting_id,
            ended_at_ms=ended_at_ms,
            audit=AuditEntry(None, action, None, None, meeting_id, event_id),
        )
        if seconds is None:
            return False
        metrics.add_metric(name="MeetingsEnded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="MeetingDuration", unit=MetricUnit.Seconds, value=seconds)
        return True
