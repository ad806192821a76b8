"""A local Amazon Chime SDK Meetings emulator with the service's semantics, for `videocall serve` and tests.

It has the boto3 client's method names and keyword arguments, checks every request against the
chime-sdk-meetings input shape in the installed botocore's service model, answers with the real
response shapes (MediaPlacement URLs included), raises botocore `ClientError`s with the real error
codes, and keeps the limits: 100 attendees per BatchCreateAttendee, 250 per meeting, NotFound once a
meeting has ended, ClientRequestToken idempotency.

Choices where the service is not documented (so the code above it must work either way):
- A repeated ExternalUserId makes a NEW attendee (the pessimistic reading of "idempotency token").
- A ClientRequestToken whose meeting has ended makes a new meeting.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ListShape, ServiceModel, Shape, StructureShape
from botocore.validate import ParamValidator

from videocall.meetings.chime import MAX_ATTENDEES_PER_BATCH, MAX_ATTENDEES_PER_MEETING

SERVICE = "chime-sdk-meetings"
_STATUS = {
    "BadRequestException": 400,
    "LimitExceededException": 400,
    "NotFoundException": 404,
    "ThrottlingException": 429,
    "ServiceUnavailableException": 503,
}


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


def _client_error(
    operation: str, code: str, message: str, headers: dict[str, str] | None = None,
    statuses: dict[str, int] = _STATUS,
) -> ClientError:  # fmt: skip
    """The ClientError botocore raises for a service error (`statuses`: that service's HTTP codes)."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": statuses.get(code, 400), "HTTPHeaders": headers or {}},
        },
        operation,
    )


def _server_side_problem(shape: Shape, value: Any, path: str) -> str | None:
    """What the service checks and botocore's client-side validator does not: patterns, maxima, enums,
    and number ranges (botocore checks integer minima only). Every emulator here uses this one walker."""
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        for name, member in shape.members.items():
            if name in value:
                problem = _server_side_problem(member, value[name], f"{path}.{name}")
                if problem:
                    return problem
    elif shape.type_name == "list" and isinstance(value, list):
        assert isinstance(shape, ListShape)
        if "max" in meta and len(value) > meta["max"]:
            return f"{path} has more than {meta['max']} items"
        for i, item in enumerate(value):
            problem = _server_side_problem(shape.member, item, f"{path}[{i}]")
            if problem:
                return problem
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            return f"{path} must be one of {shape.enum}"
        if "max" in meta and len(value) > meta["max"]:
            return f"{path} is longer than {meta['max']}"
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            return f"{path} does not match {meta['pattern']}"
    elif (
        shape.type_name in ("integer", "long", "float", "double")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and (("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]))
    ):
        return f"{path} is outside [{meta.get('min')}, {meta.get('max')}]"
    return None


def model_problem(input_shape: Shape, params: dict[str, Any]) -> str | None:
    """Why the service would refuse a request, or None: botocore's validator against the installed
    service model, then what the service checks beyond it (`_server_side_problem`)."""
    report = ParamValidator().validate(params, input_shape)
    if report.has_errors():
        return str(report.generate_report())
    return _server_side_problem(input_shape, params, "")


def take_failure(fail_next: dict[str, list[str]], operation: str) -> str | None:
    """The error code a test asked this operation to fail with next (the emulators' `fail_next` hook)."""
    pending = fail_next.get(operation)
    return pending.pop(0) if pending else None


def _check_capabilities(operation: str, capabilities: dict[str, str]) -> None:
    """Chime's rule beyond the model: content can be received only while video can be received."""
    if capabilities["Content"] in ("SendReceive", "Receive") and capabilities["Video"] in ("None", "Send"):
        raise _client_error(operation, "BadRequestException", "Content can be received only when video can be received")


class ChimeEmulator:
    """`emit`, when given, receives the EventBridge events Chime would send (`Chime Meeting State
    Change`): MeetingStarted on create, MeetingEnded on delete or auto-end, AttendeeDeleted, and the
    AttendeeJoined / Left / Dropped that `play` acts out (no real client connects locally).
    `on_meeting_ended` listeners run when a meeting ends (the media-pipelines emulator stops its capture)."""

    def __init__(
        self, region: str = "eu-central-1", account_id: str = "111122223333",
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:  # fmt: skip
        self.region = region
        self.account_id = account_id
        self.emit = emit
        self.on_meeting_ended: list[Callable[[str], None]] = []
        self._last_ms = 0
        # Live transcription: meeting id -> TranscriptionConfiguration while it runs; every attendee a
        # meeting ever had (the local transcript is written in their voices after the meeting ended).
        self.transcribing: dict[str, dict[str, Any]] = {}
        self.transcribed: dict[str, dict[str, Any]] = {}  # ever transcribed (kept after stop and end)
        self.attendee_history: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._meetings: dict[str, dict[str, Any]] = {}
        self._attendees: dict[str, dict[str, dict[str, Any]]] = {}  # meeting id -> attendee id -> attendee
        self._tokens: dict[str, str] = {}  # ClientRequestToken -> meeting id
        self.deleted: set[str] = set()
        # Test hook: operation name -> error codes to raise on its next calls (e.g. throttling).
        self.fail_next: dict[str, list[str]] = {}

    # --- boto3-shaped API ---------------------------------------------------------------------
    def create_meeting(self, **params: Any) -> dict[str, Any]:
        self._check("CreateMeeting", params)
        with self._lock:
            existing = self._tokens.get(params["ClientRequestToken"])
            if existing and existing in self._meetings:
                return {"Meeting": dict(self._meetings[existing])}
            meeting_id = str(uuid.uuid4())
            meeting = self._meeting_shape(meeting_id, params)
            self._meetings[meeting_id] = meeting
            self._attendees[meeting_id] = {}
            self._tokens[params["ClientRequestToken"]] = meeting_id
        self._event("chime:MeetingStarted", meeting)
        return {"Meeting": dict(meeting)}

    def get_meeting(self, **params: Any) -> dict[str, Any]:
        self._check("GetMeeting", params)
        with self._lock:
            return {"Meeting": dict(self._meeting("GetMeeting", params["MeetingId"]))}

    def delete_meeting(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteMeeting", params)
        with self._lock:
            meeting = self._meeting("DeleteMeeting", params["MeetingId"])
            self._end(params["MeetingId"])
        self._ended(meeting)
        return {}

    def create_attendee(self, **params: Any) -> dict[str, Any]:
        self._check("CreateAttendee", params)
        with self._lock:
            self._meeting("CreateAttendee", params["MeetingId"])
            attendees = self._attendees[params["MeetingId"]]
            if len(attendees) >= MAX_ATTENDEES_PER_MEETING:
                raise _client_error("CreateAttendee", "LimitExceededException", "Attendee limit exceeded")
            return {"Attendee": dict(self._add_attendee(params["MeetingId"], params))}

    def batch_create_attendee(self, **params: Any) -> dict[str, Any]:
        self._check("BatchCreateAttendee", params)
        items = params["Attendees"]
        assert len(items) <= MAX_ATTENDEES_PER_BATCH  # the model's max, checked by _check
        with self._lock:
            self._meeting("BatchCreateAttendee", params["MeetingId"])
            attendees = self._attendees[params["MeetingId"]]
            created: list[dict[str, Any]] = []
            errors: list[dict[str, str]] = []
            for item in items:
                if len(attendees) >= MAX_ATTENDEES_PER_MEETING:
                    errors.append(
                        {
                            "ExternalUserId": item["ExternalUserId"],
                            "ErrorCode": "LimitExceeded",
                            "ErrorMessage": "Attendee limit exceeded",
                        }
                    )
                    continue
                created.append(dict(self._add_attendee(params["MeetingId"], item)))
            return {"Attendees": created, "Errors": errors}

    def start_meeting_transcription(self, **params: Any) -> dict[str, Any]:
        self._check("StartMeetingTranscription", params)
        config = params["TranscriptionConfiguration"]
        if len(config) != 1:
            raise _client_error("StartMeetingTranscription", "BadRequestException", "exactly one engine's settings")
        with self._lock:
            meeting = self._meeting("StartMeetingTranscription", params["MeetingId"])
            self.transcribing[params["MeetingId"]] = config
            self.transcribed[params["MeetingId"]] = config
        engine = next(iter(config.values()))
        self._event("chime:TranscriptionStarted", meeting, transcriptionRegion=engine.get("Region"),
                    transcriptionConfiguration=str(config))  # fmt: skip
        return {}

    def stop_meeting_transcription(self, **params: Any) -> dict[str, Any]:
        self._check("StopMeetingTranscription", params)
        with self._lock:
            meeting = self._meeting("StopMeetingTranscription", params["MeetingId"])
            running = self.transcribing.pop(params["MeetingId"], None)
        if running is not None:
            self._event("chime:TranscriptionStopped", meeting)
        return {}

    def get_attendee(self, **params: Any) -> dict[str, Any]:
        self._check("GetAttendee", params)
        with self._lock:
            self._meeting("GetAttendee", params["MeetingId"])
            attendee = self._attendees[params["MeetingId"]].get(params["AttendeeId"])
            if attendee is None:
                raise _client_error("GetAttendee", "NotFoundException", "Attendee not found")
            return {"Attendee": dict(attendee)}

    def delete_attendee(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteAttendee", params)
        with self._lock:
            meeting = self._meeting("DeleteAttendee", params["MeetingId"])
            attendee = self._attendees[params["MeetingId"]].pop(params["AttendeeId"], None)
            if attendee is None:
                raise _client_error("DeleteAttendee", "NotFoundException", "Attendee not found")
        self._event("chime:AttendeeDeleted", meeting, attendee)
        return {}

    def update_attendee_capabilities(self, **params: Any) -> dict[str, Any]:
        self._check("UpdateAttendeeCapabilities", params)
        _check_capabilities("UpdateAttendeeCapabilities", params["Capabilities"])
        with self._lock:
            self._meeting("UpdateAttendeeCapabilities", params["MeetingId"])
            attendee = self._attendees[params["MeetingId"]].get(params["AttendeeId"])
            if attendee is None:
                raise _client_error("UpdateAttendeeCapabilities", "NotFoundException", "Attendee not found")
            attendee["Capabilities"] = dict(params["Capabilities"])
            return {"Attendee": dict(attendee)}

    def batch_update_attendee_capabilities_except(self, **params: Any) -> dict[str, Any]:
        operation = "BatchUpdateAttendeeCapabilitiesExcept"
        self._check(operation, params)
        _check_capabilities(operation, params["Capabilities"])
        excluded = {item["AttendeeId"] for item in params["ExcludedAttendeeIds"]}
        with self._lock:
            self._meeting(operation, params["MeetingId"])
            for attendee_id, attendee in self._attendees[params["MeetingId"]].items():
                if attendee_id not in excluded:
                    attendee["Capabilities"] = dict(params["Capabilities"])
        return {}

    def capabilities(self, meeting_id: str, attendee_id: str) -> dict[str, str]:
        """What Chime would enforce for this attendee now (for tests and the local stack)."""
        with self._lock:
            return dict(self._attendees[meeting_id][attendee_id]["Capabilities"])

    # --- emulator controls (what the real service does on its own) ----------------------------
    def auto_end(self, meeting_id: str) -> None:
        """What Chime does after 5 minutes with nobody connected, or after 24 hours."""
        with self._lock:
            meeting = self._meetings.get(meeting_id)
            self._end(meeting_id)
        if meeting is not None:
            self._ended(meeting)

    def play(self, meeting_id: str, attendee_id: str, what: str, *, network_type: str = "Voip") -> dict[str, Any]:
        """Act out a client: `what` is joined, left or dropped. Returns the event sent."""
        event_type = {
            "joined": "chime:AttendeeJoined",
            "left": "chime:AttendeeLeft",
            "dropped": "chime:AttendeeDropped",
        }
        if what not in event_type:
            raise ValueError("what must be joined, left or dropped")
        with self._lock:
            meeting = self._meeting("Play", meeting_id)
            attendee = self._attendees[meeting_id].get(attendee_id)
            if attendee is None:
                raise _client_error("Play", "NotFoundException", "Attendee not found")
        return self._event(event_type[what], meeting, attendee, networkType=network_type)

    def _ended(self, meeting: dict[str, Any]) -> None:
        self._event("chime:MeetingEnded", meeting)
        for listener in list(self.on_meeting_ended):
            listener(meeting["MeetingId"])

    def _event(
        self, event_type: str, meeting: dict[str, Any], attendee: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """An EventBridge `Chime Meeting State Change` event, as Chime sends it; handed to `emit`."""
        with self._lock:
            self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
            at_ms = self._last_ms
        detail: dict[str, Any] = {
            "version": "0", "eventType": event_type, "timestamp": at_ms, "meetingId": meeting["MeetingId"],
            "externalMeetingId": meeting["ExternalMeetingId"], "mediaRegion": meeting["MediaRegion"],
        }  # fmt: skip
        if attendee is not None:
            detail.update(attendeeId=attendee["AttendeeId"], externalUserId=attendee["ExternalUserId"])
        detail.update(extra)
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Chime Meeting State Change",
            "source": "aws.chime", "account": self.account_id,
            "time": datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region, "resources": [], "detail": detail,
        }  # fmt: skip
        if self.emit is not None:
            self.emit(event)
        return event

    def attendee_count(self, meeting_id: str) -> int:
        return len(self._attendees.get(meeting_id, {}))

    @property
    def meeting_count(self) -> int:
        return len(self._meetings)

    # --- internals ----------------------------------------------------------------------------
    def _check(self, operation: str, params: dict[str, Any]) -> None:
        code = take_failure(self.fail_next, operation)
        if code:
            raise _client_error(operation, code, f"emulated {code}", {"retry-after": "2"})
        problem = model_problem(service_model().operation_model(operation).input_shape, params)
        if problem:
            raise _client_error(operation, "BadRequestException", problem)

    def _meeting(self, operation: str, meeting_id: str) -> dict[str, Any]:
        meeting = self._meetings.get(meeting_id)
        if meeting is None:
            raise _client_error(operation, "NotFoundException", f"Meeting {meeting_id} not found")
        return meeting

    def _end(self, meeting_id: str) -> None:
        self._meetings.pop(meeting_id, None)
        self._attendees.pop(meeting_id, None)
        self.deleted.add(meeting_id)

    def _add_attendee(self, meeting_id: str, item: dict[str, Any]) -> dict[str, Any]:
        if item.get("Capabilities"):
            _check_capabilities("CreateAttendee", item["Capabilities"])
        attendee = {
            "ExternalUserId": item["ExternalUserId"],
            "AttendeeId": str(uuid.uuid4()),
            "JoinToken": base64.b64encode(secrets.token_bytes(96)).decode(),
            "Capabilities": item.get("Capabilities")
            or {"Audio": "SendReceive", "Video": "SendReceive", "Content": "SendReceive"},
        }
        self._attendees[meeting_id][attendee["AttendeeId"]] = attendee
        self.attendee_history.setdefault(meeting_id, []).append(attendee)
        return attendee

    def _meeting_shape(self, meeting_id: str, params: dict[str, Any]) -> dict[str, Any]:
        region = params["MediaRegion"]
        short = {"eu-central-1": "ec1", "us-east-1": "ue1", "us-west-2": "uw2", "eu-west-1": "ew1"}.get(region, "xx")
        host = secrets.token_hex(16)
        meeting: dict[str, Any] = {
            "MeetingId": meeting_id,
            "ExternalMeetingId": params["ExternalMeetingId"],
            "MediaRegion": region,
            "MediaPlacement": {
                "AudioHostUrl": f"{host}.k.m3.{short}.app.chime.aws:3478",
                "AudioFallbackUrl": f"wss://haxrp.m3.{short}.app.chime.aws:443/calls/{meeting_id}",
                "SignalingUrl": f"wss://signal.m3.{short}.app.chime.aws/control/{meeting_id}",
                "TurnControlUrl": f"https://2713.cell.{region}.meetings.chime.aws/v2/turn_sessions",
                "ScreenDataUrl": f"wss://bitpw.m3.{short}.app.chime.aws:443/v2/screen/{meeting_id}",
                "ScreenViewingUrl": f"wss://bitpw.m3.{short}.app.chime.aws:443/ws/connect?passcode=null&viewer_uuid=null&X-BitHub-Call-Id={meeting_id}",
                "ScreenSharingUrl": f"wss://bitpw.m3.{short}.app.chime.aws:443/v2/screen/{meeting_id}",
                "EventIngestionUrl": f"https://data.svc.{short}.ingest.chime.aws/v1/client-events",
            },
            "MeetingArn": f"arn:aws:chime:{self.region}:{self.account_id}:meeting/{meeting_id}",
        }
        if "MeetingFeatures" in params:
            meeting["MeetingFeatures"] = params["MeetingFeatures"]
        return meeting
