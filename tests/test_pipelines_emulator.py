"""The media-pipelines emulator keeps the service's rules (checked against botocore's model), writes what
Chime writes into S3 (moto), and emits Chime's EventBridge events; the local S3 serves presigned downloads."""

from __future__ import annotations

import threading
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from videocall.local.chime_emulator import _server_side_problem
from videocall.local.pipelines_emulator import MediaPipelinesEmulator
from videocall.local.pipelines_emulator import service_model as pipelines_model
from videocall.local.s3 import ensure_recordings_bucket, kms_client, s3_client, start_local_s3

REGION = "eu-central-1"
BUCKET = "videocall-recordings-test"
MEETING_ID = "87654321-aaaa-bbbb-cccc-1234567890ab"
OTHER_MEETING_ID = "12345678-aaaa-bbbb-cccc-1234567890ab"
CONCATENATION_KINDS = ("Audio", "Video", "Content", "DataChannel", "TranscriptionMessages", "MeetingEvents")


def capture_params(
    meeting_id: str = MEETING_ID,
    *,
    idempotency_key: str = "rec-1-capture",
    prefix: str = "recordings/rec-1/capture",
    key_arn: str | None = None,
    mux: str = "AudioWithCompositedVideo",
    video: bool = False,
    content: bool = True,
) -> dict[str, Any]:
    artifacts: dict[str, Any] = {
        "Audio": {"MuxType": mux},
        "Video": {"State": "Enabled", "MuxType": "VideoOnly"} if video else {"State": "Disabled"},
        "Content": {"State": "Enabled", "MuxType": "ContentOnly"} if content else {"State": "Disabled"},
    }
    if mux == "AudioWithCompositedVideo":
        artifacts["CompositedVideo"] = {
            "Layout": "GridView",
            "Resolution": "FHD",
            "GridViewConfiguration": {"ContentShareLayout": "PresenterOnly"},
        }
    params: dict[str, Any] = {
        "SourceType": "ChimeSdkMeeting",
        "SourceArn": f"arn:aws:chime::111122223333:meeting:{meeting_id}",
        "SinkType": "S3Bucket",
        "SinkArn": f"arn:aws:s3:::{BUCKET}/{prefix}" if prefix else f"arn:aws:s3:::{BUCKET}",
        "ClientRequestToken": idempotency_key,
        "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": artifacts},
    }
    if key_arn:
        params["SseAwsKeyManagementParams"] = {"AwsKmsKeyId": key_arn}
        params["SinkIamRoleArn"] = "arn:aws:iam::111122223333:role/videocall-recordings-sink"
    return params


def concatenation_params(
    capture_arn: str,
    *,
    idempotency_key: str = "rec-1-concat",
    prefix: str = "recordings/rec-1/concatenated",
    enabled: tuple[str, ...] = (*CONCATENATION_KINDS, "CompositedVideo"),
) -> dict[str, Any]:
    artifacts = {
        kind: {"State": "Enabled" if kind in enabled or kind == "Audio" else "Disabled"}
        for kind in (*CONCATENATION_KINDS, "CompositedVideo")
    }
    return {
        "Sources": [
            {
                "Type": "MediaCapturePipeline",
                "MediaCapturePipelineSourceConfiguration": {
                    "MediaPipelineArn": capture_arn,
                    "ChimeSdkMeetingConfiguration": {"ArtifactsConfiguration": artifacts},
                },
            }
        ],
        "Sinks": [
            {"Type": "S3Bucket", "S3BucketSinkConfiguration": {"Destination": f"arn:aws:s3:::{BUCKET}/{prefix}"}}
        ],
        "ClientRequestToken": idempotency_key,
    }


@pytest.fixture(scope="module")
def clients() -> tuple[Any, Any]:
    """Made once (client creation is most of a test's time); moto intercepts them while mock_aws is on."""
    return boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)


@pytest.fixture
def aws(clients: tuple[Any, Any]) -> Iterator[tuple[Any, str]]:
    """moto's S3 and KMS in this process, fresh for each test: the bucket's client and a KMS key ARN."""
    s3, kms = clients
    with mock_aws():
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3, kms.create_key()["KeyMetadata"]["Arn"]


@pytest.fixture
def emulator(aws: tuple[Any, str]) -> MediaPipelinesEmulator:
    return MediaPipelinesEmulator(s3_client=aws[0], region=REGION)


def keys(s3: Any, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def error_of(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def detail(event: dict[str, Any]) -> tuple[str, str]:
    return event["detail"]["eventType"], event["detail"]["mediaPipelineId"]


# --- shapes ------------------------------------------------------------------------------------
def test_responses_match_the_service_model(emulator, aws):
    _, key_arn = aws
    made = emulator.create_media_capture_pipeline(**capture_params(key_arn=key_arn, video=True))
    capture = made["MediaCapturePipeline"]
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(capture["MediaPipelineArn"]))
    got_capture = emulator.get_media_pipeline(MediaPipelineId=capture["MediaPipelineId"])
    got_concat = emulator.get_media_pipeline(MediaPipelineId=concat["MediaConcatenationPipeline"]["MediaPipelineId"])
    deleted = emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])

    assert capture["Status"] == "InProgress" and concat["MediaConcatenationPipeline"]["Status"] == "Initializing"
    assert (
        capture["MediaPipelineArn"]
        == f"arn:aws:chime:{REGION}:111122223333:media-pipeline/{capture['MediaPipelineId']}"
    )
    assert capture["SseAwsKeyManagementParams"] == {"AwsKmsKeyId": key_arn}
    assert capture["SinkIamRoleArn"].endswith("role/videocall-recordings-sink")
    assert capture["ChimeSdkMeetingConfiguration"]["ArtifactsConfiguration"]["Video"]["State"] == "Enabled"
    assert set(got_capture["MediaPipeline"]) == {"MediaCapturePipeline"}
    assert set(got_concat["MediaPipeline"]) == {"MediaConcatenationPipeline"}
    assert deleted == {}
    client = boto3.client("chime-sdk-media-pipelines", region_name=REGION)
    with Stubber(client) as stubber:  # add_response raises when a response does not fit the output shape
        stubber.add_response("create_media_capture_pipeline", made)
        stubber.add_response("create_media_concatenation_pipeline", concat)
        stubber.add_response("get_media_pipeline", got_capture)
        stubber.add_response("get_media_pipeline", got_concat)
        stubber.add_response(
            "get_media_pipeline", emulator.get_media_pipeline(MediaPipelineId=capture["MediaPipelineId"])
        )
        stubber.add_response("delete_media_capture_pipeline", deleted)

    # Stubber checks types and required members, not enums or patterns: check those too.
    for operation, response in (
        ("CreateMediaCapturePipeline", made),
        ("CreateMediaConcatenationPipeline", concat),
        ("GetMediaPipeline", got_capture),
        ("GetMediaPipeline", got_concat),
    ):
        output_shape = pipelines_model().operation_model(operation).output_shape
        assert output_shape is not None and _server_side_problem(output_shape, response, "") is None


def test_the_model_checks_are_real():
    client = boto3.client("chime-sdk-media-pipelines", region_name=REGION)
    with Stubber(client) as stubber, pytest.raises(Exception, match="Status"):
        stubber.add_response("create_media_capture_pipeline", {"MediaCapturePipeline": {"Status": 5}})
    output_shape = pipelines_model().operation_model("CreateMediaCapturePipeline").output_shape
    assert output_shape is not None
    assert _server_side_problem(output_shape, {"MediaCapturePipeline": {"Status": "Running"}}, "")


# --- validation --------------------------------------------------------------------------------
def _without(params: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != name}


def _bad_capture(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    params = capture_params()
    target = params
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return params


_ARTIFACTS = ("ChimeSdkMeetingConfiguration", "ArtifactsConfiguration")


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("create_media_capture_pipeline", _bad_capture((*_ARTIFACTS, "Audio", "MuxType"), "AudioAndEverything")),
        ("create_media_capture_pipeline", _bad_capture((*_ARTIFACTS, "Video", "State"), "On")),
        ("create_media_capture_pipeline", _bad_capture((*_ARTIFACTS, "Content"), {})),
        (
            "create_media_capture_pipeline",
            _bad_capture(
                (*_ARTIFACTS, "CompositedVideo", "GridViewConfiguration", "VerticalLayoutConfiguration"),
                {"TileCount": 11},
            ),
        ),
        ("create_media_capture_pipeline", _without(capture_params(), "SinkArn")),
        ("create_media_capture_pipeline", _bad_capture(("SinkArn",), "arn:aws:s3:::bucket/with space")),
        ("create_media_capture_pipeline", _bad_capture(("SinkArn",), "arn:aws:sqs:eu-central-1:1:queue")),
        ("create_media_capture_pipeline", _bad_capture(("SourceType",), "ChimeSdkCall")),
        ("create_media_capture_pipeline", _bad_capture(("ClientRequestToken",), "bad token!")),
        ("create_media_capture_pipeline", {**capture_params(), "Unknown": 1}),
        ("get_media_pipeline", {"MediaPipelineId": "not-a-guid"}),
        ("delete_media_capture_pipeline", {}),
    ],
)
def test_invalid_requests_are_bad_requests(emulator, operation, params):
    with pytest.raises(ClientError) as caught:
        getattr(emulator, operation)(**params)
    assert error_of(caught) == ("BadRequestException", 400)
    assert emulator.events == []


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["Sources"][0]["MediaCapturePipelineSourceConfiguration"]["ChimeSdkMeetingConfiguration"][
            "ArtifactsConfiguration"
        ]["Audio"].update(State="Disabled"),  # the model allows only Enabled
        lambda p: p["Sources"][0]["MediaCapturePipelineSourceConfiguration"]["ChimeSdkMeetingConfiguration"][
            "ArtifactsConfiguration"
        ].pop("CompositedVideo"),  # every kind is required
        lambda p: p["Sources"].append(p["Sources"][0]),  # at most one source
        lambda p: p["Sinks"][0].update(Type="Kinesis"),
    ],
)
def test_invalid_concatenations_are_bad_requests(emulator, change):
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    params = concatenation_params(capture["MediaPipelineArn"])
    change(params)
    with pytest.raises(ClientError) as caught:
        emulator.create_media_concatenation_pipeline(**params)
    assert error_of(caught) == ("BadRequestException", 400)


def test_concatenation_of_an_unknown_capture_is_not_found(emulator):
    unknown = f"arn:aws:chime:{REGION}:111122223333:media-pipeline/{uuid.uuid4()}"
    with pytest.raises(ClientError) as caught:
        emulator.create_media_concatenation_pipeline(**concatenation_params(unknown))
    assert error_of(caught) == ("NotFoundException", 404)


def test_a_capture_needs_a_writable_sink_bucket(emulator):
    params = capture_params()
    params["SinkArn"] = "arn:aws:s3:::no-such-bucket/recordings"
    with pytest.raises(ClientError) as caught:
        emulator.create_media_capture_pipeline(**params)
    assert error_of(caught) == ("BadRequestException", 400)
    emulator.create_media_capture_pipeline(**capture_params())  # the meeting's slot was not taken


# --- idempotency, limits, lifecycle ------------------------------------------------------------
def test_the_client_request_token_makes_creation_idempotent(emulator, aws):
    s3, _ = aws
    first = emulator.create_media_capture_pipeline(**capture_params())
    objects = keys(s3, "recordings/")
    again = emulator.create_media_capture_pipeline(**capture_params())
    assert again == first
    assert keys(s3, "recordings/") == objects and len(emulator.events) == 1

    arn = first["MediaCapturePipeline"]["MediaPipelineArn"]
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(arn))
    assert emulator.create_media_concatenation_pipeline(**concatenation_params(arn)) == concat
    other = emulator.create_media_concatenation_pipeline(**concatenation_params(arn, idempotency_key="rec-1-concat-b"))
    ids = {
        concat["MediaConcatenationPipeline"]["MediaPipelineId"],
        other["MediaConcatenationPipeline"]["MediaPipelineId"],
    }
    assert len(ids) == 2


def test_one_running_capture_per_meeting(emulator):
    first = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    with pytest.raises(ClientError) as caught:
        emulator.create_media_capture_pipeline(
            **capture_params(idempotency_key="rec-2-capture", prefix="recordings/rec-2")
        )
    assert error_of(caught) == ("ResourceLimitExceededException", 400)

    other = capture_params(OTHER_MEETING_ID, idempotency_key="rec-9-capture", prefix="recordings/rec-9")
    emulator.create_media_capture_pipeline(**other)  # another meeting is fine

    emulator.delete_media_capture_pipeline(MediaPipelineId=first["MediaPipelineId"])
    second = emulator.create_media_capture_pipeline(
        **capture_params(idempotency_key="rec-2-capture", prefix="recordings/rec-2")
    )
    assert second["MediaCapturePipeline"]["MediaPipelineId"] != first["MediaPipelineId"]


def test_a_missing_token_is_filled_in_like_botocore_does(emulator):
    made = [
        emulator.create_media_capture_pipeline(**_without(capture_params(meeting), "ClientRequestToken"))
        for meeting in (MEETING_ID, OTHER_MEETING_ID)
    ]
    assert made[0]["MediaCapturePipeline"]["MediaPipelineId"] != made[1]["MediaCapturePipeline"]["MediaPipelineId"]


def test_delete_twice_or_unknown_is_not_found(emulator):
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    assert emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"]) == {}
    for pipeline_id in (capture["MediaPipelineId"], str(uuid.uuid4())):
        with pytest.raises(ClientError) as caught:
            emulator.delete_media_capture_pipeline(MediaPipelineId=pipeline_id)
        assert error_of(caught) == ("NotFoundException", 404)
    with pytest.raises(ClientError) as caught:
        emulator.get_media_pipeline(MediaPipelineId=str(uuid.uuid4()))
    assert error_of(caught) == ("NotFoundException", 404)
    stopped = emulator.get_media_pipeline(MediaPipelineId=capture["MediaPipelineId"])
    assert stopped["MediaPipeline"]["MediaCapturePipeline"]["Status"] == "Stopped"


def test_fail_next_raises_the_given_codes_then_works(emulator):
    emulator.fail_next["CreateMediaCapturePipeline"] = ["ThrottledClientException", "ServiceUnavailableException"]
    for expected in (("ThrottledClientException", 429), ("ServiceUnavailableException", 503)):
        with pytest.raises(ClientError) as caught:
            emulator.create_media_capture_pipeline(**capture_params())
        assert error_of(caught) == expected
    assert emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]["Status"] == "InProgress"


# --- what lands in S3 --------------------------------------------------------------------------
def test_capture_chunks_go_to_chimes_folders(emulator, aws):
    s3, _ = aws
    emulator.create_media_capture_pipeline(**capture_params(video=True, content=True))
    folders = sorted({key.split("/")[3] for key in keys(s3, "recordings/rec-1/capture/")})
    assert folders == ["audio", "composited-video", "content", "data-channel", "meeting-events", "video"]
    video = next(k for k in keys(s3, "recordings/rec-1/capture/video/"))
    stamp, _, attendee = video.rsplit("/", 1)[1].removesuffix(".mp4").partition("-")
    assert len(stamp) == 17 and stamp.isdigit() and uuid.UUID(attendee)


def test_capture_without_video_or_content_writes_only_audio_and_data(emulator, aws):
    s3, _ = aws
    emulator.create_media_capture_pipeline(**capture_params(prefix="", mux="AudioOnly", video=False, content=False))
    assert sorted({key.split("/")[0] for key in keys(s3, "")}) == ["audio", "data-channel", "meeting-events"]


def test_prefix_and_folder_are_joined_with_one_slash(emulator, aws):
    s3, _ = aws
    emulator.create_media_capture_pipeline(**capture_params(prefix="recordings/rec-1/"))
    assert keys(s3, "") and all("//" not in key for key in keys(s3, ""))
    assert all(key.startswith("recordings/rec-1/") for key in keys(s3, ""))


def test_concatenation_writes_one_file_per_enabled_kind_the_capture_produced(emulator, aws):
    s3, _ = aws
    capture = emulator.create_media_capture_pipeline(**capture_params(video=False, content=True))[
        "MediaCapturePipeline"
    ]
    # Transcription messages exist only when the meeting had transcription: pretend it had.
    s3.put_object(
        Bucket=BUCKET, Key="recordings/rec-1/capture/transcription-messages/20260101000000000.txt", Body=b"{}"
    )
    # Video enabled here, but the capture wrote none; Content disabled here, though the capture wrote some.
    enabled = ("Audio", "Video", "DataChannel", "TranscriptionMessages", "MeetingEvents", "CompositedVideo")
    concat = emulator.create_media_concatenation_pipeline(
        **concatenation_params(capture["MediaPipelineArn"], enabled=enabled)
    )["MediaConcatenationPipeline"]
    assert keys(s3, "recordings/rec-1/concatenated/") == []  # nothing until the capture stops

    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])

    concat_id = concat["MediaPipelineId"]
    assert keys(s3, "recordings/rec-1/concatenated/") == [
        f"recordings/rec-1/concatenated/{folder}/{concat_id}.{ext}"
        for folder, ext in (
            ("audio", "mp4"),
            ("composited-video", "mp4"),
            ("data-channel", "txt"),
            ("meeting-events", "txt"),
            ("transcription-messages", "txt"),
        )
    ]
    got = emulator.get_media_pipeline(MediaPipelineId=concat_id)["MediaPipeline"]["MediaConcatenationPipeline"]
    assert got["Status"] == "Stopped"


def test_without_transcription_there_is_no_transcription_file(emulator, aws):
    s3, _ = aws
    capture = emulator.create_media_capture_pipeline(**capture_params(mux="AudioOnly", content=False))
    arn = capture["MediaCapturePipeline"]["MediaPipelineArn"]
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(arn))["MediaConcatenationPipeline"]
    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaCapturePipeline"]["MediaPipelineId"])
    folders = [key.split("/")[3] for key in keys(s3, "recordings/rec-1/concatenated/")]
    assert folders == ["audio", "data-channel", "meeting-events"]
    assert all(key.endswith(f"/{concat['MediaPipelineId']}.{key[-3:]}") for key in keys(s3, "recordings/rec-1/concat"))


def test_every_object_is_encrypted_with_the_capture_key(emulator, aws):
    s3, key_arn = aws
    capture = emulator.create_media_capture_pipeline(**capture_params(key_arn=key_arn, video=True))
    arn = capture["MediaCapturePipeline"]["MediaPipelineArn"]
    emulator.create_media_concatenation_pipeline(**concatenation_params(arn))
    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaCapturePipeline"]["MediaPipelineId"])

    written = keys(s3, "recordings/")
    assert len(written) == 12  # 6 capture folders + 6 concatenated kinds
    for key in written:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn), key


def test_a_concatenation_that_cannot_write_fails_permanently(emulator):
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    params = concatenation_params(capture["MediaPipelineArn"])
    params["Sinks"][0]["S3BucketSinkConfiguration"]["Destination"] = "arn:aws:s3:::no-such-bucket/out"
    concat = emulator.create_media_concatenation_pipeline(**params)["MediaConcatenationPipeline"]
    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])
    assert detail(emulator.events[-1]) == ("chime:MediaPipelinePermanentFailure", concat["MediaPipelineId"])
    got = emulator.get_media_pipeline(MediaPipelineId=concat["MediaPipelineId"])["MediaPipeline"]
    assert got["MediaConcatenationPipeline"]["Status"] == "Failed"


# --- events ------------------------------------------------------------------------------------
def test_events_are_chimes_envelopes_in_order(aws):
    s3, _ = aws
    emitted: list[dict[str, Any]] = []
    emulator = MediaPipelinesEmulator(s3_client=s3, region=REGION, account_id="444455556666", emit=emitted.append)
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(capture["MediaPipelineArn"]))
    concat_id = concat["MediaConcatenationPipeline"]["MediaPipelineId"]
    assert [detail(e) for e in emulator.events] == [("chime:MediaPipelineInProgress", capture["MediaPipelineId"])]

    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])

    assert [detail(e) for e in emulator.events] == [
        ("chime:MediaPipelineInProgress", capture["MediaPipelineId"]),
        ("chime:MediaPipelineDeleted", capture["MediaPipelineId"]),
        ("chime:MediaPipelineInProgress", concat_id),
        ("chime:MediaPipelineDeleted", concat_id),
    ]
    assert emitted == emulator.events
    stamps = [e["detail"]["timestamp"] for e in emulator.events]
    assert all(isinstance(s, int) for s in stamps) and stamps == sorted(set(stamps))  # strictly increasing
    assert len({e["id"] for e in emulator.events}) == 4
    first = emulator.events[0]
    assert set(first) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert first["detail-type"] == "Chime Media Pipeline State Change" and first["source"] == "aws.chime"
    assert (first["account"], first["region"], first["resources"], first["version"]) == (
        "444455556666",
        REGION,
        [],
        "0",
    )
    assert first["time"].endswith("Z") and len(first["time"]) == len("2026-01-01T00:00:00Z")
    assert first["detail"] == {
        "version": "0",
        "eventType": "chime:MediaPipelineInProgress",
        "timestamp": stamps[0],
        "meetingId": MEETING_ID,
        "mediaPipelineId": capture["MediaPipelineId"],
        "mediaRegion": REGION,
    }
    assert {e["detail"]["meetingId"] for e in emulator.events} == {MEETING_ID}


def test_emit_runs_outside_the_lock_so_handlers_can_call_back(aws):
    s3, _ = aws
    seen: list[str] = []
    emulator: MediaPipelinesEmulator

    def handler(event: dict[str, Any]) -> None:  # what an event handler in the app does: look the pipeline up
        found = emulator.get_media_pipeline(MediaPipelineId=event["detail"]["mediaPipelineId"])["MediaPipeline"]
        seen.append(next(iter(found.values()))["Status"])

    emulator = MediaPipelinesEmulator(s3_client=s3, region=REGION, emit=handler)

    def run() -> None:
        capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
        emulator.create_media_concatenation_pipeline(**concatenation_params(capture["MediaPipelineArn"]))
        emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "emit was called with the emulator's lock held"
    assert seen == ["InProgress", "Stopped", "Stopped", "Stopped"]


def test_meeting_end_stops_the_capture_like_delete(emulator, aws):
    s3, _ = aws
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    other = emulator.create_media_capture_pipeline(
        **capture_params(OTHER_MEETING_ID, idempotency_key="rec-9-capture", prefix="recordings/rec-9")
    )["MediaCapturePipeline"]
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(capture["MediaPipelineArn"]))
    concat_id = concat["MediaConcatenationPipeline"]["MediaPipelineId"]

    emulator.meeting_ended(MEETING_ID)

    assert [detail(e) for e in emulator.events[2:]] == [
        ("chime:MediaPipelineDeleted", capture["MediaPipelineId"]),
        ("chime:MediaPipelineInProgress", concat_id),
        ("chime:MediaPipelineDeleted", concat_id),
    ]
    assert (
        emulator.get_media_pipeline(MediaPipelineId=capture["MediaPipelineId"])["MediaPipeline"][
            "MediaCapturePipeline"
        ]["Status"]
        == "Stopped"
    )
    assert emulator.get_media_pipeline(MediaPipelineId=other["MediaPipelineId"])["MediaPipeline"][
        "MediaCapturePipeline"
    ]["Status"] == "InProgress"  # fmt: skip
    assert keys(s3, "recordings/rec-1/concatenated/")
    with pytest.raises(ClientError) as caught:
        emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])
    assert error_of(caught) == ("NotFoundException", 404)
    emulator.meeting_ended(MEETING_ID)  # nothing left to stop
    assert len(emulator.events) == 5


def test_a_concatenation_created_after_the_capture_stopped_runs_at_once(emulator, aws):
    s3, _ = aws
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])
    concat = emulator.create_media_concatenation_pipeline(**concatenation_params(capture["MediaPipelineArn"]))
    concat_id = concat["MediaConcatenationPipeline"]["MediaPipelineId"]
    assert [detail(e) for e in emulator.events[-2:]] == [
        ("chime:MediaPipelineInProgress", concat_id),
        ("chime:MediaPipelineDeleted", concat_id),
    ]
    assert any(key.endswith(f"/audio/{concat_id}.mp4") for key in keys(s3, "recordings/rec-1/concatenated/"))


def test_failures_emit_chimes_events_and_set_the_status(emulator):
    capture = emulator.create_media_capture_pipeline(**capture_params())["MediaCapturePipeline"]
    pipeline_id = capture["MediaPipelineId"]

    def status() -> str:
        return str(
            emulator.get_media_pipeline(MediaPipelineId=pipeline_id)["MediaPipeline"]["MediaCapturePipeline"]["Status"]
        )

    expected = []
    for kind, event_type, state in (
        ("temporary", "chime:MediaPipelineTemporaryFailure", "Paused"),
        ("resumed", "chime:MediaPipelineResumed", "InProgress"),
        ("permanent", "chime:MediaPipelinePermanentFailure", "Failed"),
    ):
        emulator.fail(pipeline_id, kind)
        expected.append((event_type, pipeline_id))
        assert status() == state
        with pytest.raises(ClientError) as caught:  # not stopped: it still holds the meeting's one capture
            emulator.create_media_capture_pipeline(**capture_params(idempotency_key=f"again-{kind}"))
        assert error_of(caught) == ("ResourceLimitExceededException", 400)
    assert [detail(e) for e in emulator.events[1:]] == expected
    stamps = [e["detail"]["timestamp"] for e in emulator.events]
    assert stamps == sorted(set(stamps))
    with pytest.raises(ValueError, match="kind"):
        emulator.fail(pipeline_id, "catastrophic")


# --- local S3: presigned downloads -------------------------------------------------------------
@pytest.fixture(scope="module")
def local_s3() -> Iterator[str]:
    server, endpoint = start_local_s3()
    try:
        yield endpoint
    finally:
        server.stop()


def test_local_bucket_is_versioned_and_kms_encrypted_and_idempotent(local_s3):
    s3, kms = s3_client(local_s3), kms_client(local_s3)
    bucket = f"recordings-{uuid.uuid4().hex[:12]}"
    key_arn = ensure_recordings_bucket(s3, kms, bucket)
    assert ensure_recordings_bucket(s3, kms, bucket) == key_arn
    assert key_arn.startswith("arn:aws:kms:eu-central-1:")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"x")  # no SSE parameters: the bucket default applies
    head = s3.head_object(Bucket=bucket, Key="plain.txt")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)


def test_presigned_download_of_a_concatenated_recording(local_s3):
    s3, kms = s3_client(local_s3), kms_client(local_s3)
    bucket = f"recordings-{uuid.uuid4().hex[:12]}"
    key_arn = ensure_recordings_bucket(s3, kms, bucket)
    emulator = MediaPipelinesEmulator(s3_client=s3, region=REGION)
    params = capture_params(key_arn=key_arn)
    params["SinkArn"] = f"arn:aws:s3:::{bucket}/recordings/rec-1/capture"
    capture = emulator.create_media_capture_pipeline(**params)["MediaCapturePipeline"]
    concat = concatenation_params(capture["MediaPipelineArn"])
    concat["Sinks"][0]["S3BucketSinkConfiguration"]["Destination"] = f"arn:aws:s3:::{bucket}/recordings/rec-1/out"
    concat_id = emulator.create_media_concatenation_pipeline(**concat)["MediaConcatenationPipeline"]["MediaPipelineId"]
    emulator.delete_media_capture_pipeline(MediaPipelineId=capture["MediaPipelineId"])

    key = f"recordings/rec-1/out/composited-video/{concat_id}.mp4"
    assert s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == key_arn
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": key, "ResponseContentDisposition": 'attachment; filename="x.mp4"'},
        ExpiresIn=300,
    )
    assert url.startswith(f"{local_s3}/{bucket}/recordings/rec-1/out/composited-video/") and "X-Amz-Signature" in url

    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
        assert response.headers["Content-Disposition"] == 'attachment; filename="x.mp4"'
    assert body and body == s3.get_object(Bucket=bucket, Key=key)["Body"].read()
