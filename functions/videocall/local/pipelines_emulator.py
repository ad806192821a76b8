"""A local Amazon Chime SDK Media Pipelines emulator (capture + concatenation), for `videocall serve` and tests.

Like the meetings emulator (videocall.local.chime_emulator) it has the boto3 client's method names and
keyword arguments, checks every request against the chime-sdk-media-pipelines input shape in the
installed botocore's service model, answers with the real response shapes and raises botocore
`ClientError`s with this service's error codes. It also does what the service does on its own:

- A capture pipeline writes chunk objects into its sink bucket (a few bytes each) under the folders
  Chime uses: audio/, video/, content/, composited-video/, meeting-events/, data-channel/.
- Deleting a capture (or the meeting ending) stops it and runs its concatenation pipelines, which
  write one object per enabled artifact kind the capture produced.
- Every state change is an EventBridge "Chime Media Pipeline State Change" event, kept in `events`
  and passed to `emit` (after the lock is released, so `emit` may call back into the emulator).

Choices where the service is not documented (so the code above it must work either way):
- A ClientRequestToken always maps to its pipeline, even after the pipeline stopped.
- A missing ClientRequestToken gets a fresh one, as botocore fills in idempotency tokens.
- A capture counts as running until it is Stopped (Paused and Failed ones still hold the meeting's slot).
- GetMediaPipeline keeps answering for stopped pipelines (Status "Stopped").
- An unknown capture ARN in CreateMediaConcatenationPipeline is NotFoundException, although the model
  does not list that error for the operation.
- A capture whose chunks cannot be written (no bucket) is refused with BadRequestException; a
  concatenation whose objects cannot be written ends Failed with a MediaPipelinePermanentFailure event.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ServiceModel, StructureShape

from videocall.local.chime_emulator import _client_error as _service_error
from videocall.local.chime_emulator import model_problem, take_failure

SERVICE = "chime-sdk-media-pipelines"
_STATUS = {
    "BadRequestException": 400,
    "ResourceLimitExceededException": 400,
    "UnauthorizedClientException": 401,
    "ForbiddenException": 403,
    "NotFoundException": 404,
    "ThrottledClientException": 429,
    "ServiceFailureException": 500,
    "ServiceUnavailableException": 503,
}
DETAIL_TYPE = "Chime Media Pipeline State Change"
IN_PROGRESS = "chime:MediaPipelineInProgress"
DELETED = "chime:MediaPipelineDeleted"
TEMPORARY_FAILURE = "chime:MediaPipelineTemporaryFailure"
RESUMED = "chime:MediaPipelineResumed"
PERMANENT_FAILURE = "chime:MediaPipelinePermanentFailure"
_FAILURES = {
    "temporary": ("Paused", TEMPORARY_FAILURE),
    "resumed": ("InProgress", RESUMED),
    "permanent": ("Failed", PERMANENT_FAILURE),
}
# Concatenation artifact (ArtifactsConcatenationConfiguration member) -> folder, file extension.
CONCATENATION_ARTIFACTS: dict[str, tuple[str, str]] = {
    "Audio": ("audio", "mp4"),
    "Video": ("video", "mp4"),
    "Content": ("content", "mp4"),
    "DataChannel": ("data-channel", "txt"),
    "TranscriptionMessages": ("transcription-messages", "txt"),
    "MeetingEvents": ("meeting-events", "txt"),
    "CompositedVideo": ("composited-video", "mp4"),
}
_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
_TXT = b'{"emulated": true}\n'


@cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


def _client_error(operation: str, code: str, message: str, headers: dict[str, str] | None = None) -> ClientError:
    return _service_error(operation, code, message, headers, statuses=_STATUS)


def _s3_destination(operation: str, arn: str) -> tuple[str, str]:
    """`arn:aws:s3:::<bucket>/<prefix>` -> (bucket, prefix without surrounding slashes)."""
    if not arn.startswith("arn:aws:s3:::"):
        raise _client_error(operation, "BadRequestException", "The sink must be an S3 bucket ARN")
    bucket, _, prefix = arn.removeprefix("arn:aws:s3:::").partition("/")
    if not bucket:
        raise _client_error(operation, "BadRequestException", "The sink ARN has no bucket")
    return bucket, prefix.strip("/")


def _key(prefix: str, folder: str, name: str) -> str:
    return f"{prefix}/{folder}/{name}" if prefix else f"{folder}/{name}"


def _chunk_stamp(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"


@dataclass
class _Capture:
    body: dict[str, Any]
    meeting_id: str
    bucket: str
    prefix: str
    sse: dict[str, str] | None
    concatenations: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.body["Status"])


@dataclass
class _Concatenation:
    body: dict[str, Any]
    capture_id: str
    bucket: str
    prefix: str

    @property
    def status(self) -> str:
        return str(self.body["Status"])


class MediaPipelinesEmulator:
    def __init__(
        self,
        *,
        s3_client: Any,
        region: str = "eu-central-1",
        account_id: str = "111122223333",
        emit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.s3 = s3_client
        self.region = region
        self.account_id = account_id
        self.emit = emit
        self._lock = threading.Lock()
        self._captures: dict[str, _Capture] = {}
        self._concatenations: dict[str, _Concatenation] = {}
        self._capture_tokens: dict[str, str] = {}  # ClientRequestToken -> capture pipeline id
        self._concatenation_tokens: dict[str, str] = {}  # ClientRequestToken -> concatenation pipeline id
        self._last_event_ms = 0
        self.events: list[dict[str, Any]] = []
        # Called as a capture stops, before its concatenation runs: (meeting id, bucket, capture prefix,
        # sse) -> None. The local stack writes the live transcript's chunks here (Chime writes them while
        # transcription runs; no real speech exists locally).
        self.before_stop: list[Callable[[str, str, str, dict[str, str] | None], None]] = []
        # Test hook: operation name -> error codes to raise on its next calls (e.g. throttling).
        self.fail_next: dict[str, list[str]] = {}

    # --- boto3-shaped API ---------------------------------------------------------------------
    def create_media_capture_pipeline(self, **params: Any) -> dict[str, Any]:
        operation = "CreateMediaCapturePipeline"
        self._check(operation, params)
        source = params["SourceArn"]
        if not source.startswith("arn:aws:chime:") or ":meeting:" not in source:
            raise _client_error(operation, "BadRequestException", "SourceArn must be a Chime SDK meeting ARN")
        meeting_id = source.rsplit(":", 1)[-1]
        bucket, prefix = _s3_destination(operation, params["SinkArn"])
        out: list[dict[str, Any]] = []
        with self._lock:
            existing = self._capture_tokens.get(params["ClientRequestToken"])
            if existing:
                return {"MediaCapturePipeline": copy.deepcopy(self._captures[existing].body)}
            if any(c.meeting_id == meeting_id and c.status != "Stopped" for c in self._captures.values()):
                raise _client_error(
                    operation, "ResourceLimitExceededException", "The meeting already has a media capture pipeline"
                )
            sse = params.get("SseAwsKeyManagementParams")
            now = datetime.now(UTC)
            try:
                self._write_chunks(bucket, prefix, params.get("ChimeSdkMeetingConfiguration") or {}, sse, now)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                raise _client_error(
                    operation, "BadRequestException", f"Cannot write to the sink bucket ({code})"
                ) from None
            pipeline_id = str(uuid.uuid4())
            body: dict[str, Any] = {
                "MediaPipelineId": pipeline_id,
                "MediaPipelineArn": self._arn(pipeline_id),
            }
            for name in ("SourceType", "SourceArn"):
                body[name] = params[name]
            body["Status"] = "InProgress"
            for name in ("SinkType", "SinkArn"):
                body[name] = params[name]
            body["CreatedTimestamp"] = body["UpdatedTimestamp"] = now
            for name in ("ChimeSdkMeetingConfiguration", "SseAwsKeyManagementParams", "SinkIamRoleArn"):
                if name in params:
                    body[name] = copy.deepcopy(params[name])
            self._captures[pipeline_id] = _Capture(body, meeting_id, bucket, prefix, copy.deepcopy(sse))
            self._capture_tokens[params["ClientRequestToken"]] = pipeline_id
            self._event(IN_PROGRESS, meeting_id, pipeline_id, out)
            response = {"MediaCapturePipeline": copy.deepcopy(body)}
        self._emit(out)
        return response

    def create_media_concatenation_pipeline(self, **params: Any) -> dict[str, Any]:
        operation = "CreateMediaConcatenationPipeline"
        self._check(operation, params)
        source = params["Sources"][0]["MediaCapturePipelineSourceConfiguration"]
        bucket, prefix = _s3_destination(operation, params["Sinks"][0]["S3BucketSinkConfiguration"]["Destination"])
        out: list[dict[str, Any]] = []
        with self._lock:
            existing = self._concatenation_tokens.get(params["ClientRequestToken"])
            if existing:
                return {"MediaConcatenationPipeline": copy.deepcopy(self._concatenations[existing].body)}
            capture = next(
                (c for c in self._captures.values() if c.body["MediaPipelineArn"] == source["MediaPipelineArn"]), None
            )
            if capture is None:
                raise _client_error(operation, "NotFoundException", "The source media capture pipeline was not found")
            pipeline_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            body: dict[str, Any] = {
                "MediaPipelineId": pipeline_id,
                "MediaPipelineArn": self._arn(pipeline_id),
                "Sources": copy.deepcopy(params["Sources"]),
                "Sinks": copy.deepcopy(params["Sinks"]),
                "Status": "Initializing",
                "CreatedTimestamp": now,
                "UpdatedTimestamp": now,
            }
            concatenation = _Concatenation(body, capture.body["MediaPipelineId"], bucket, prefix)
            self._concatenations[pipeline_id] = concatenation
            self._concatenation_tokens[params["ClientRequestToken"]] = pipeline_id
            capture.concatenations.append(pipeline_id)
            response = {"MediaConcatenationPipeline": copy.deepcopy(body)}
            if capture.status == "Stopped":
                self._concatenate(concatenation, capture, out)
        self._emit(out)
        return response

    def delete_media_capture_pipeline(self, **params: Any) -> dict[str, Any]:
        operation = "DeleteMediaCapturePipeline"
        self._check(operation, params)
        out: list[dict[str, Any]] = []
        with self._lock:
            capture = self._captures.get(params["MediaPipelineId"])
            if capture is None or capture.status == "Stopped":
                raise _client_error(operation, "NotFoundException", "Media capture pipeline not found")
            self._stop(capture, out)
        self._emit(out)
        return {}

    def get_media_pipeline(self, **params: Any) -> dict[str, Any]:
        operation = "GetMediaPipeline"
        self._check(operation, params)
        pipeline_id = params["MediaPipelineId"]
        with self._lock:
            if pipeline_id in self._captures:
                return {"MediaPipeline": {"MediaCapturePipeline": copy.deepcopy(self._captures[pipeline_id].body)}}
            if pipeline_id in self._concatenations:
                body = copy.deepcopy(self._concatenations[pipeline_id].body)
                return {"MediaPipeline": {"MediaConcatenationPipeline": body}}
        raise _client_error(operation, "NotFoundException", "Media pipeline not found")

    # --- emulator controls (what the real service does on its own) ----------------------------
    def meeting_ended(self, meeting_id: str) -> None:
        """What Chime does when a meeting ends: its capture stops, as if deleted, and concatenation runs."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for capture in list(self._captures.values()):
                if capture.meeting_id == meeting_id and capture.status != "Stopped":
                    self._stop(capture, out)
        self._emit(out)

    def fail(self, pipeline_id: str, kind: str) -> None:
        """kind "temporary" (Paused), "resumed" (InProgress again) or "permanent" (Failed), with its event."""
        if kind not in _FAILURES:
            raise ValueError(f"kind must be one of {sorted(_FAILURES)}")
        status, event_type = _FAILURES[kind]
        out: list[dict[str, Any]] = []
        with self._lock:
            body, meeting_id = self._find(pipeline_id)
            if body["Status"] == "Stopped":
                raise ValueError(f"pipeline {pipeline_id} has already stopped")
            body["Status"] = status
            body["UpdatedTimestamp"] = datetime.now(UTC)
            self._event(event_type, meeting_id, pipeline_id, out)
        self._emit(out)

    # --- internals ----------------------------------------------------------------------------
    def _check(self, operation: str, params: dict[str, Any]) -> None:
        code = take_failure(self.fail_next, operation)
        if code:
            raise _client_error(operation, code, f"emulated {code}", {"retry-after": "2"})
        input_shape = service_model().operation_model(operation).input_shape
        assert isinstance(input_shape, StructureShape)
        for name, member in input_shape.members.items():  # what botocore does before sending
            if member.metadata.get("idempotencyToken") and name not in params:
                params[name] = str(uuid.uuid4())
        problem = model_problem(input_shape, params)
        if problem:
            raise _client_error(operation, "BadRequestException", problem)

    def _arn(self, pipeline_id: str) -> str:
        return f"arn:aws:chime:{self.region}:{self.account_id}:media-pipeline/{pipeline_id}"

    def _find(self, pipeline_id: str) -> tuple[dict[str, Any], str]:
        if pipeline_id in self._captures:
            capture = self._captures[pipeline_id]
            return capture.body, capture.meeting_id
        if pipeline_id in self._concatenations:
            concatenation = self._concatenations[pipeline_id]
            return concatenation.body, self._captures[concatenation.capture_id].meeting_id
        raise KeyError(f"unknown media pipeline {pipeline_id}")

    def _put(self, bucket: str, key: str, body: bytes, sse: dict[str, str] | None) -> None:
        extra: dict[str, str] = {}
        if sse:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": sse["AwsKmsKeyId"]}
            if sse.get("AwsKmsEncryptionContext"):
                extra["SSEKMSEncryptionContext"] = sse["AwsKmsEncryptionContext"]
        content_type = "video/mp4" if key.endswith(".mp4") else "text/plain"
        self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)

    def _write_chunks(
        self, bucket: str, prefix: str, config: dict[str, Any], sse: dict[str, str] | None, now: datetime
    ) -> None:
        """The first chunks of a capture, in the folders Chime writes them to."""
        artifacts = config.get("ArtifactsConfiguration") or {}
        stamp = _chunk_stamp(now)
        names = [("audio", f"{stamp}.mp4"), ("meeting-events", f"{stamp}.txt"), ("data-channel", f"{stamp}.txt")]
        if artifacts.get("Audio", {}).get("MuxType") == "AudioWithCompositedVideo":
            names.append(("composited-video", f"{stamp}.mp4"))
        if artifacts.get("Video", {}).get("State") == "Enabled":
            names.append(("video", f"{stamp}-{uuid.uuid4()}.mp4"))
        if artifacts.get("Content", {}).get("State") == "Enabled":
            names.append(("content", f"{stamp}.mp4"))
        for folder, name in names:
            self._put(bucket, _key(prefix, folder, name), _MP4 if name.endswith(".mp4") else _TXT, sse)

    def _stop(self, capture: _Capture, out: list[dict[str, Any]]) -> None:
        for hook in self.before_stop:
            hook(capture.meeting_id, capture.bucket, capture.prefix, capture.sse)
        capture.body["Status"] = "Stopped"
        capture.body["UpdatedTimestamp"] = datetime.now(UTC)
        self._event(DELETED, capture.meeting_id, capture.body["MediaPipelineId"], out)
        for pipeline_id in capture.concatenations:
            concatenation = self._concatenations[pipeline_id]
            if concatenation.status == "Initializing":
                self._concatenate(concatenation, capture, out)

    def _joined_chunks(self, capture: _Capture, folder: str) -> bytes:
        """A text artifact is its chunks, in order, one after the other (as Chime concatenates them)."""
        listed = self.s3.list_objects_v2(Bucket=capture.bucket, Prefix=_key(capture.prefix, folder, ""))
        keys = sorted(o["Key"] for o in listed.get("Contents", []))
        parts = [self.s3.get_object(Bucket=capture.bucket, Key=k)["Body"].read() for k in keys]
        return b"".join(part if part.endswith(b"\n") else part + b"\n" for part in parts)

    def _captured(self, capture: _Capture, folder: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=capture.bucket, Prefix=_key(capture.prefix, folder, ""), MaxKeys=1)
        return bool(listed.get("KeyCount"))

    def _concatenate(self, concatenation: _Concatenation, capture: _Capture, out: list[dict[str, Any]]) -> None:
        """One object per enabled artifact kind the capture produced, then the pipeline stops."""
        body = concatenation.body
        pipeline_id = body["MediaPipelineId"]
        body["Status"] = "InProgress"
        body["UpdatedTimestamp"] = datetime.now(UTC)
        self._event(IN_PROGRESS, capture.meeting_id, pipeline_id, out)
        source = body["Sources"][0]["MediaCapturePipelineSourceConfiguration"]
        artifacts = source["ChimeSdkMeetingConfiguration"]["ArtifactsConfiguration"]
        try:
            for kind, (folder, extension) in CONCATENATION_ARTIFACTS.items():
                enabled = kind == "Audio" or artifacts.get(kind, {}).get("State") == "Enabled"
                if enabled and self._captured(capture, folder):
                    key = _key(concatenation.prefix, folder, f"{pipeline_id}.{extension}")
                    body_bytes = _MP4 if extension == "mp4" else self._joined_chunks(capture, folder)
                    self._put(concatenation.bucket, key, body_bytes, capture.sse)
        except ClientError:
            body["Status"] = "Failed"
            body["UpdatedTimestamp"] = datetime.now(UTC)
            self._event(PERMANENT_FAILURE, capture.meeting_id, pipeline_id, out)
            return
        body["Status"] = "Stopped"
        body["UpdatedTimestamp"] = datetime.now(UTC)
        self._event(DELETED, capture.meeting_id, pipeline_id, out)

    def _event(self, event_type: str, meeting_id: str, pipeline_id: str, out: list[dict[str, Any]]) -> None:
        """Record an EventBridge envelope (under the lock); `_emit` hands it out after the lock is released."""
        stamp = max(time.time_ns() // 1_000_000, self._last_event_ms + 1)
        self._last_event_ms = stamp
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": DETAIL_TYPE,
            "source": "aws.chime",
            "account": self.account_id,
            "time": datetime.fromtimestamp(stamp / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [],
            "detail": {
                "version": "0",
                "eventType": event_type,
                "timestamp": stamp,
                "meetingId": meeting_id,
                "mediaPipelineId": pipeline_id,
                "mediaRegion": self.region,
            },
        }
        self.events.append(event)
        out.append(event)

    def _emit(self, out: list[dict[str, Any]]) -> None:
        if self.emit is not None:
            for event in out:
                self.emit(copy.deepcopy(event))
