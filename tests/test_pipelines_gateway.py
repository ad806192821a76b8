"""The media-pipelines gateway against botocore's Stubber: the real chime-sdk-media-pipelines model checks
every request we send and every response shape we read; errors become the domain's answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from videocall.core.errors import RecordingLimitReached, RecordingUnavailable
from videocall.recordings.pipelines import CaptureSettings, Pipeline, PipelinesGateway, Sink, source_arn

MEETING_ID = "87654321-aaaa-bbbb-cccc-1234567890ab"
MEETING_ARN = f"arn:aws:chime:eu-central-1:111122223333:meeting/{MEETING_ID}"
CAPTURE_ID = "11111111-2222-3333-4444-555555555555"
CONCAT_ID = "66666666-7777-8888-9999-000000000000"
KEY = "arn:aws:kms:eu-central-1:111122223333:key/0f0f0f0f-1111-2222-3333-444444444444"
ROLE = "arn:aws:iam::111122223333:role/videocall-dev-pipeline-sink"
PREFIX = f"recordings/appt_123/{MEETING_ID}/r1"


def capture_response(status: str = "InProgress") -> dict[str, Any]:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    return {"MediaCapturePipeline": {
        "MediaPipelineId": CAPTURE_ID,
        "MediaPipelineArn": f"arn:aws:chime:eu-central-1:111122223333:media-pipeline/{CAPTURE_ID}",
        "SourceType": "ChimeSdkMeeting", "SourceArn": source_arn(MEETING_ARN, MEETING_ID), "Status": status,
        "SinkType": "S3Bucket", "SinkArn": f"arn:aws:s3:::rec-bucket/{PREFIX}/capture",
        "CreatedTimestamp": now, "UpdatedTimestamp": now,
    }}  # fmt: skip


@pytest.fixture
def stubbed() -> Iterator[tuple[PipelinesGateway, Stubber, list[float]]]:
    client = boto3.client("chime-sdk-media-pipelines", region_name="eu-central-1")
    sleeps: list[float] = []
    with Stubber(client) as stubber:
        gateway = PipelinesGateway(client, sink=Sink("rec-bucket", KEY, ROLE), capture=CaptureSettings())
        gateway.caller.sleep = sleeps.append
        yield gateway, stubber, sleeps
        stubber.assert_no_pending_responses()


def test_capture_goes_to_the_meetings_prefix_encrypted_with_the_customer_key_through_the_sink_role(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_response("create_media_capture_pipeline", capture_response(), {
        "SourceType": "ChimeSdkMeeting",
        "SourceArn": f"arn:aws:chime::111122223333:meeting:{MEETING_ID}",
        "SinkType": "S3Bucket",
        "SinkArn": f"arn:aws:s3:::rec-bucket/{PREFIX}/capture",
        "ClientRequestToken": f"{MEETING_ID}-r1",
        "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": {
            "Audio": {"MuxType": "AudioWithCompositedVideo"},
            "Video": {"State": "Disabled"},
            "Content": {"State": "Enabled", "MuxType": "ContentOnly"},
            "CompositedVideo": {"Layout": "GridView", "Resolution": "FHD",
                                "GridViewConfiguration": {"ContentShareLayout": "PresenterOnly"}},
        }},
        "SseAwsKeyManagementParams": {"AwsKmsKeyId": KEY},
        "SinkIamRoleArn": ROLE,
    })  # fmt: skip

    pipeline = gateway.start_capture(meeting_arn=MEETING_ARN, meeting_id=MEETING_ID, prefix=PREFIX,
                                     token=f"{MEETING_ID}-r1")  # fmt: skip

    assert pipeline.id == CAPTURE_ID and pipeline.arn.endswith(f"media-pipeline/{CAPTURE_ID}")


def test_concatenation_takes_the_captures_arn_and_chooses_the_data_artifacts(stubbed):
    gateway, stubber, _ = stubbed
    capture = Pipeline(CAPTURE_ID, f"arn:aws:chime:eu-central-1:111122223333:media-pipeline/{CAPTURE_ID}")
    enabled, disabled = {"State": "Enabled"}, {"State": "Disabled"}
    stubber.add_response(
        "create_media_concatenation_pipeline",
        {"MediaConcatenationPipeline": {
            "MediaPipelineId": CONCAT_ID,
            "MediaPipelineArn": f"arn:aws:chime:eu-central-1:111122223333:media-pipeline/{CONCAT_ID}",
            "Status": "Initializing"}},
        {"Sources": [{"Type": "MediaCapturePipeline", "MediaCapturePipelineSourceConfiguration": {
            "MediaPipelineArn": capture.arn,
            "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": {
                "Audio": enabled, "Video": disabled, "Content": enabled, "DataChannel": enabled,
                "TranscriptionMessages": enabled, "MeetingEvents": enabled, "CompositedVideo": enabled}}}}],
         "Sinks": [{"Type": "S3Bucket",
                    "S3BucketSinkConfiguration": {"Destination": f"arn:aws:s3:::rec-bucket/{PREFIX}/concatenated"}}],
         "ClientRequestToken": f"{MEETING_ID}-c1"},
    )  # fmt: skip
    assert gateway.start_concatenation(capture=capture, prefix=PREFIX, token=f"{MEETING_ID}-c1").id == CONCAT_ID


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("ResourceLimitExceededException", 400, RecordingLimitReached),
     ("ForbiddenException", 403, RecordingUnavailable),
     ("BadRequestException", 400, RecordingUnavailable),
     ("ServiceUnavailableException", 503, RecordingUnavailable)],
)  # fmt: skip
def test_refusals_become_clear_domain_errors(stubbed, code: str, status: int, error: type[Exception]):
    gateway, stubber, _ = stubbed
    stubber.add_client_error("create_media_capture_pipeline", code, "bucket rec-bucket secret-detail", status)
    with pytest.raises(error) as raised:
        gateway.start_capture(meeting_arn=MEETING_ARN, meeting_id=MEETING_ID, prefix=PREFIX, token="t-r1")
    assert "secret-detail" not in raised.value.message  # Chime's message is never shown (it can echo values)


def test_throttling_is_retried_with_backoff_then_gives_up_as_503(stubbed):
    gateway, stubber, sleeps = stubbed
    for _ in range(2):
        stubber.add_client_error("delete_media_capture_pipeline", "ThrottledClientException", "slow down", 429)
    stubber.add_response("delete_media_capture_pipeline", {}, {"MediaPipelineId": CAPTURE_ID})
    gateway.stop_capture(CAPTURE_ID)
    assert len(sleeps) == 2 and gateway.caller.calls == 3

    for _ in range(5):
        stubber.add_client_error("delete_media_capture_pipeline", "ThrottledClientException", "slow down", 429)
    with pytest.raises(RecordingUnavailable):
        gateway.stop_capture(CAPTURE_ID)


def test_stopping_a_pipeline_that_is_gone_counts_as_stopped_and_status_is_none(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_client_error("delete_media_capture_pipeline", "NotFoundException", "gone", 404)
    stubber.add_client_error("get_media_pipeline", "NotFoundException", "gone", 404)
    gateway.stop_capture(CAPTURE_ID)
    assert gateway.status(CAPTURE_ID) is None


def test_status_reads_the_kind_the_response_names(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_response("get_media_pipeline", {"MediaPipeline": capture_response("Stopping")},
                         {"MediaPipelineId": CAPTURE_ID})  # fmt: skip
    assert gateway.status(CAPTURE_ID) == "Stopping"


def test_capture_settings_follow_the_service_model():
    """Every combination the settings allow is a request the model accepts (validated by Stubber)."""
    for audio in ("AudioOnly", "AudioWithActiveSpeakerVideo", "AudioWithCompositedVideo"):
        for individual in (True, False):
            client = boto3.client("chime-sdk-media-pipelines", region_name="eu-central-1")
            with Stubber(client) as stubber:
                settings = CaptureSettings(audio=audio, individual_video=individual, content_share=not individual)
                gateway = PipelinesGateway(client, sink=Sink("b", "", ""), capture=settings)
                stubber.add_response("create_media_capture_pipeline", capture_response())
                gateway.start_capture(meeting_arn=MEETING_ARN, meeting_id=MEETING_ID, prefix="p", token="tok-r1")
