"""What a context stores about an appointment, declared once so one mechanism (videocall.privacy)
serves retention, the right of access (export) and erasure for every context.

A context that keeps patient content implements `AppointmentContent` and is listed in the runtime's
`content_holders`; nothing else needs to change for retention, export and erasure to cover it.
"""

from __future__ import annotations

from typing import Any, Protocol


class AppointmentContent(Protocol):
    kind: str  # "recordings"; later "transcripts", "messages", "attachments"

    def export(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> list[dict[str, Any]]:
        """Metadata and links to the content; every link issued is an audit event."""
        ...

    def erase(self, appointment_ids: list[str], *, actor: str | None, request_id: str | None) -> int:
        """Delete the content (every object version, every content row); the number of items deleted."""
        ...

    def expire(self, *, older_than_days: int, held: frozenset[str], request_id: str | None) -> int:
        """Delete content past retention, except for appointments under a legal hold."""
        ...
