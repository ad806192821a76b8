"""The media-pipelines gateway: the only place that talks to chime-sdk-media-pipelines.

A recording is one capture pipeline (the meeting's media, in 5-second chunks, under
`<prefix>/capture/`) and one concatenation pipeline created with it, which runs when the capture
stops and writes one file per artifact under `<prefix>/concatenated/`.

- What to capture (audio mux, content share, each attendee's video) comes from settings; what to
  concatenate (transcription messages, meeting events, data channel) is chosen here, at
  concatenation, because the capture configuration has no switch for them (service model).
- Objects are encrypted with the customer-managed key through SseAwsKeyManagementParams and the
  sink role the pipeline assumes (SinkIamRoleArn); concatenation reuses the capture's key.
- Errors, in this client's own names: ThrottledClientException is retried with backoff;
  ResourceLimitExceededException -> RecordingLimitReached (409); NotFoundException -> PipelineGone;
  everything else (ForbiddenException for a bad bucket or key policy, ServiceUnavailable, ...)
  -> RecordingUnavailable (503, Retry-After). Codes are logged, messages never.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from videocall.core.aws import AwsCaller, retry_after_seconds
from videocall.core.errors import RecordingLimitReached, RecordingUnavailable
from videocall.core.observability import count_failure, logger


class PipelineGone(Exception):
    """NotFound: the pipeline was deleted (or never existed)."""


class MediaPipelinesClient(Protocol):
    def create_media_capture_pipeline(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_media_concatenation_pipeline(self, **kwargs: Any) -> dict[str, Any]: ...
    def delete_media_capture_pipeline(self, **kwargs: Any) -> dict[str, Any]: ...
    def get_media_pipeline(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CaptureSettings:
    audio: str = "AudioWithCompositedVideo"  # AudioOnly | AudioWithActiveSpeakerVideo | AudioWithCompositedVideo
    content_share: bool = True
    individual_video: bool = False  # each attendee's own video stream (multi-stream), besides the grid
    resolution: str = "FHD"

    def artifacts(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Audio": {"MuxType": self.audio},
            "Video": {"State": "Enabled", "MuxType": "VideoOnly"} if self.individual_video else {"State": "Disabled"},
            "Content": {"State": "Enabled", "MuxType": "ContentOnly"} if self.content_share else {"State": "Disabled"},
        }
        if self.audio == "AudioWithCompositedVideo":
            config["CompositedVideo"] = {
                "Layout": "GridView",
                "Resolution": self.resolution,
                "GridViewConfiguration": {"ContentShareLayout": "PresenterOnly"},
            }
        return config


@dataclass(frozen=True)
class Pipeline:
    id: str
    arn: str


@dataclass(frozen=True)
class Sink:
    bucket: str
    kms_key_arn: str
    role_arn: str

    def arn(self, prefix: str) -> str:
        return f"arn:aws:s3:::{self.bucket}/{prefix.rstrip('/')}"


_THROTTLED = frozenset({"ThrottledClientException", "ThrottlingException", "TooManyRequestsException"})


def _translate(operation: str, exc: ClientError, code: str) -> Exception:
    if code == "NotFoundException":
        return PipelineGone()
    logger.warning("media pipelines call failed", extra={"operation": operation, "error_code": code})
    if code == "ResourceLimitExceededException":
        count_failure("recording_limit")
        return RecordingLimitReached()
    count_failure(f"recording_{code or 'error'}")
    return RecordingUnavailable(retry_after=retry_after_seconds(exc) if code in _THROTTLED else 5)


def _unreachable() -> Exception:
    count_failure("media_pipelines_unreachable")
    return RecordingUnavailable()


class PipelinesGateway:
    def __init__(self, client: MediaPipelinesClient, *, sink: Sink, capture: CaptureSettings) -> None:
        self._client = client
        self._sink = sink
        self._capture = capture
        self.caller = AwsCaller(
            service="media pipelines", throttle_codes=_THROTTLED, translate=_translate, unreachable=_unreachable
        )

    @property
    def bucket(self) -> str:
        return self._sink.bucket

    def start_capture(
        self, *, meeting_arn: str, meeting_id: str, prefix: str, token: str, audio_only: bool = False
    ) -> Pipeline:
        """Idempotent on `token`: a retried start gets the same pipeline. `audio_only`: a capture only for
        the transcript (audio is always captured; no video, no content share)."""
        capture = CaptureSettings(audio="AudioOnly", content_share=False) if audio_only else self._capture
        params: dict[str, Any] = {
            "SourceType": "ChimeSdkMeeting",
            "SourceArn": source_arn(meeting_arn, meeting_id),
            "SinkType": "S3Bucket",
            "SinkArn": self._sink.arn(f"{prefix}/capture"),
            "ClientRequestToken": token,
            "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": capture.artifacts()},
        }
        if self._sink.kms_key_arn:
            params["SseAwsKeyManagementParams"] = {"AwsKmsKeyId": self._sink.kms_key_arn}
            params["SinkIamRoleArn"] = self._sink.role_arn
        pipeline = self.caller.call(self._client, "create_media_capture_pipeline", **params)["MediaCapturePipeline"]
        return Pipeline(pipeline["MediaPipelineId"], pipeline["MediaPipelineArn"])

    def start_concatenation(self, *, capture: Pipeline, prefix: str, token: str, audio_only: bool = False) -> Pipeline:
        """Created with the capture; Chime runs it when the capture stops (one file per artifact)."""
        enabled = {"State": "Enabled"}
        disabled = {"State": "Disabled"}
        settings = CaptureSettings(audio="AudioOnly", content_share=False) if audio_only else self._capture
        artifacts = {
            "Audio": enabled,
            "Video": enabled if settings.individual_video else disabled,
            "Content": enabled if settings.content_share else disabled,
            "DataChannel": enabled,
            "TranscriptionMessages": enabled,
            "MeetingEvents": enabled,
            "CompositedVideo": enabled if settings.audio == "AudioWithCompositedVideo" else disabled,
        }
        response = self.caller.call(
            self._client,
            "create_media_concatenation_pipeline",
            Sources=[
                {
                    "Type": "MediaCapturePipeline",
                    "MediaCapturePipelineSourceConfiguration": {
                        "MediaPipelineArn": capture.arn,
                        "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": artifacts},
                    },
                }
            ],
            Sinks=[{"Type": "S3Bucket", "S3BucketSinkConfiguration": {"Destination": self._sink.arn(
                f"{prefix}/concatenated")}}],
            ClientRequestToken=token,
        )["MediaConcatenationPipeline"]  # fmt: skip
        return Pipeline(response["MediaPipelineId"], response["MediaPipelineArn"])

    def stop_capture(self, pipeline_id: str) -> None:
        """Stop capturing (the concatenation then runs). Already gone counts as stopped."""
        with contextlib.suppress(PipelineGone):
            self.caller.call(self._client, "delete_media_capture_pipeline", MediaPipelineId=pipeline_id)

    def status(self, pipeline_id: str) -> str | None:
        """The pipeline's Status, or None when Chime no longer knows it."""
        try:
            found = self.caller.call(self._client, "get_media_pipeline", MediaPipelineId=pipeline_id)["MediaPipeline"]
        except PipelineGone:
            return None
        for kind in found.values():
            if isinstance(kind, dict) and "Status" in kind:
                return str(kind["Status"])
        return None


def source_arn(meeting_arn: str | None, meeting_id: str) -> str:
    """The capture's SourceArn: arn:aws:chime::<account>:meeting:<MeetingId> (developer guide), with the
    account taken from the MeetingArn CreateMeeting returned."""
    account = (meeting_arn or "").split(":")[4] if meeting_arn and meeting_arn.count(":") >= 5 else ""
    return f"arn:aws:chime::{account}:meeting:{meeting_id}"
