"""The Chime gateway: the only place that talks to the chime-sdk-meetings API.

It wraps a boto3 `chime-sdk-meetings` client (or the local emulator, which has the same methods
and raises the same `ClientError`s) and speaks the domain's language back:
- NotFoundException -> ChimeMeetingGone (the meeting ended, or Chime auto-ended it);
- ThrottlingException -> retried here with capped exponential backoff and full jitter;
- ServiceUnavailableException / ServiceFailureException -> ChimeUnavailable (503, Retry-After);
  not retried here: the boto3 client (standard retry mode, 2 attempts) has retried 5xx and throttling
  once already (tests/test_faults.py counts the requests);
- anything else -> UpstreamError (502), with Chime's error code but never its message (messages
  can echo request values).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from videocall.core.aws import AwsCaller, retry_after_seconds
from videocall.core.errors import ChimeUnavailable, UpstreamError
from videocall.core.observability import count_failure, logger

# Chime's own limits (see README "Chime facts").
MAX_ATTENDEES_PER_BATCH = 100
MAX_ATTENDEES_PER_MEETING = 250
MAX_CONCURRENT_BATCHES = 3  # 250 attendees / 100 per call
# Screen share allowed: Content SendReceive needs Video SendReceive.
ATTENDEE_CAPABILITIES = {"Audio": "SendReceive", "Video": "SendReceive", "Content": "SendReceive"}


class ChimeMeetingGone(Exception):
    """Chime answered NotFound: the meeting is over (ended or auto-ended)."""


class ChimeAttendeeGone(Exception):
    """Chime answered NotFound for an attendee of a meeting that still exists."""


@dataclass
class BatchResult:
    attendees: list[dict[str, Any]] = field(default_factory=list)
    # {ExternalUserId, ErrorCode, ErrorMessage}: ErrorMessage is Chime's and is not shown to callers.
    errors: list[dict[str, str]] = field(default_factory=list)


class ChimeClient(Protocol):
    """The subset of the boto3 chime-sdk-meetings client we use (the emulator implements it too)."""

    def create_meeting(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_attendee(self, **kwargs: Any) -> dict[str, Any]: ...
    def batch_create_attendee(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_attendee(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_attendee(self, **kwargs: Any) -> dict[str, Any]: ...
    def update_attendee_capabilities(self, **kwargs: Any) -> dict[str, Any]: ...
    def batch_update_attendee_capabilities_except(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_meeting(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_meeting(self, **kwargs: Any) -> dict[str, Any]: ...
    def start_meeting_transcription(self, **kwargs: Any) -> dict[str, Any]: ...
    def stop_meeting_transcription(self, **kwargs: Any) -> dict[str, Any]: ...


class ChimeGateway:
    def __init__(
        self,
        client: ChimeClient,
        *,
        media_region: str,
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._media_region = media_region
        self.caller = AwsCaller(
            service="chime", throttle_codes=_THROTTLED, translate=_translate, unreachable=_unreachable,
            max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, sleep=sleep,
        )  # fmt: skip
        self._pool: ThreadPoolExecutor | None = None

    def _batch_pool(self) -> ThreadPoolExecutor:
        """The threads batch chunks run on: started once per execution environment and kept (frozen
        with it between invocations), not three new threads on every batch-join."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_BATCHES, thread_name_prefix="chime-batch")
        return self._pool

    @property
    def calls(self) -> int:
        """AWS calls made, retries included: benchmarks and tests read it."""
        return self.caller.calls

    @property
    def client(self) -> ChimeClient:
        """The client behind the gateway (locally, the emulator: the local server's controls act on it)."""
        return self._client

    # --- meetings -----------------------------------------------------------------------------
    def create_meeting(self, *, client_request_token: str, external_meeting_id: str) -> dict[str, Any]:
        response = self._call(
            "create_meeting",
            ClientRequestToken=client_request_token,
            ExternalMeetingId=external_meeting_id,
            MediaRegion=self._media_region,
            MeetingFeatures={"Audio": {"EchoReduction": "AVAILABLE"}},
        )
        return response["Meeting"]

    def meeting_exists(self, meeting_id: str) -> bool:
        """GetMeeting: False when Chime answers NotFound (the meeting ended, or was auto-ended)."""
        try:
            self._call("get_meeting", MeetingId=meeting_id)
        except ChimeMeetingGone:
            return False
        return True

    def start_transcription(self, meeting_id: str, configuration: dict[str, Any]) -> None:
        """StartMeetingTranscription (the transcripts context decides the configuration)."""
        self._call("start_meeting_transcription", MeetingId=meeting_id, TranscriptionConfiguration=configuration)

    def stop_transcription(self, meeting_id: str) -> None:
        """StopMeetingTranscription; a meeting that is gone has no transcription to stop."""
        with contextlib.suppress(ChimeMeetingGone):
            self._call("stop_meeting_transcription", MeetingId=meeting_id)

    def delete_meeting(self, meeting_id: str) -> None:
        """End the meeting for everyone. Already gone counts as done."""
        with contextlib.suppress(ChimeMeetingGone):
            self._call("delete_meeting", MeetingId=meeting_id)

    # --- attendees ----------------------------------------------------------------------------
    def create_attendee(
        self, meeting_id: str, external_user_id: str, capabilities: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """`capabilities`: what the attendee may send (a muted person rejoins muted); all on by default."""
        response = self._call(
            "create_attendee",
            MeetingId=meeting_id,
            ExternalUserId=external_user_id,
            Capabilities=capabilities or ATTENDEE_CAPABILITIES,
        )
        return response["Attendee"]

    def update_capabilities(self, meeting_id: str, attendee_id: str, capabilities: dict[str, str]) -> None:
        """Server-enforced mute / video off / share off for one attendee (Chime wants all three)."""
        self._call("update_attendee_capabilities", MeetingId=meeting_id, AttendeeId=attendee_id,
                   Capabilities=capabilities)  # fmt: skip

    def update_capabilities_except(
        self, meeting_id: str, excluded_attendee_ids: Sequence[str], capabilities: dict[str, str]
    ) -> None:
        """Everyone in the meeting but the excluded (1-250 of them) gets `capabilities`."""
        self._call(
            "batch_update_attendee_capabilities_except", MeetingId=meeting_id,
            ExcludedAttendeeIds=[{"AttendeeId": a} for a in excluded_attendee_ids], Capabilities=capabilities,
        )  # fmt: skip

    def get_attendee(self, meeting_id: str, attendee_id: str) -> dict[str, Any]:
        try:
            return self._call("get_attendee", MeetingId=meeting_id, AttendeeId=attendee_id)["Attendee"]
        except ChimeMeetingGone:
            # GetAttendee's NotFound does not say whether the meeting or the attendee is gone.
            raise ChimeAttendeeGone() from None

    def delete_attendee(self, meeting_id: str, attendee_id: str) -> None:
        with contextlib.suppress(ChimeMeetingGone):
            self._call("delete_attendee", MeetingId=meeting_id, AttendeeId=attendee_id)

    def batch_create_attendees(
        self, meeting_id: str, external_user_ids: Sequence[str],
        capabilities: Mapping[str, dict[str, str]] | None = None,
    ) -> BatchResult:  # fmt: skip
        """Add attendees in chunks of 100, the chunks run concurrently; partial failure is reported per user."""
        chunks = [
            list(external_user_ids[i : i + MAX_ATTENDEES_PER_BATCH])
            for i in range(0, len(external_user_ids), MAX_ATTENDEES_PER_BATCH)
        ]
        result = BatchResult()
        if not chunks:
            return result
        if len(chunks) == 1:
            outcomes = [self._batch_chunk(meeting_id, chunks[0], capabilities)]
        else:
            outcomes = list(self._batch_pool().map(lambda c: self._batch_chunk(meeting_id, c, capabilities), chunks))
        for outcome in outcomes:
            result.attendees.extend(outcome.attendees)
            result.errors.extend(outcome.errors)
        return result

    def _batch_chunk(
        self, meeting_id: str, external_user_ids: list[str], capabilities: Mapping[str, dict[str, str]] | None
    ) -> BatchResult:
        """`capabilities`: per ExternalUserId (what each may send; all on when not given)."""
        allowed = capabilities or {}
        try:
            response = self._call(
                "batch_create_attendee",
                MeetingId=meeting_id,
                Attendees=[{"ExternalUserId": u, "Capabilities": allowed.get(u, ATTENDEE_CAPABILITIES)}
                           for u in external_user_ids],
            )  # fmt: skip
        except (ChimeUnavailable, UpstreamError) as exc:
            # A whole chunk failed: report each of its users, keep the other chunks' successes.
            return BatchResult(
                errors=[{"ExternalUserId": u, "ErrorCode": exc.code, "ErrorMessage": ""} for u in external_user_ids]
            )
        return BatchResult(attendees=response.get("Attendees", []), errors=response.get("Errors", []))

    # --- the one place calls are made -----------------------------------------------------------
    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.caller.call(self._client, operation, **params)


_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException"})


def _translate(operation: str, exc: ClientError, code: str) -> Exception:
    if code == "NotFoundException":
        return ChimeMeetingGone()
    logger.warning("chime call failed", extra={"operation": operation, "error_code": code})
    if code in ("ServiceUnavailableException", "ServiceFailureException", "ThrottlingException"):
        count_failure("chime_unavailable")
        return ChimeUnavailable(retry_after=retry_after_seconds(exc))
    count_failure("chime_error")
    return UpstreamError(f"The video service rejected the request ({code or 'unknown error'}).")


def _unreachable() -> Exception:
    count_failure("chime_unreachable")
    return ChimeUnavailable()
