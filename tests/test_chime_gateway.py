"""The Chime gateway against botocore's Stubber (the real service model checks every request and
response), and the emulator checked against the same model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from videocall.core.errors import ChimeUnavailable, UpstreamError
from videocall.local.chime_emulator import ChimeEmulator
from videocall.meetings.chime import ATTENDEE_CAPABILITIES, ChimeGateway, ChimeMeetingGone

MEETING_ID = "87654321-aaaa-bbbb-cccc-1234567890ab"


def meeting(meeting_id: str = MEETING_ID) -> dict[str, Any]:
    return {
        "MeetingId": meeting_id,
        "ExternalMeetingId": "appt_123",
        "MediaRegion": "eu-central-1",
        "MediaPlacement": {
            "AudioHostUrl": "abc.k.m3.ec1.app.chime.aws:3478",
            "SignalingUrl": f"wss://signal.m3.ec1.app.chime.aws/control/{meeting_id}",
            "TurnControlUrl": "https://2713.cell.eu-central-1.meetings.chime.aws/v2/turn_sessions",
            "EventIngestionUrl": "https://data.svc.ec1.ingest.chime.aws/v1/client-events",
        },
    }


def attendee(external_user_id: str) -> dict[str, Any]:
    return {"ExternalUserId": external_user_id, "AttendeeId": str(uuid.uuid4()), "JoinToken": "jt-" + "x" * 40}


@pytest.fixture
def stubbed() -> Iterator[tuple[ChimeGateway, Stubber, list[float]]]:
    client = boto3.client("chime-sdk-meetings", region_name="eu-central-1")
    sleeps: list[float] = []
    with Stubber(client) as stubber:
        yield ChimeGateway(client, media_region="eu-central-1", sleep=sleeps.append), stubber, sleeps
        stubber.assert_no_pending_responses()


def test_create_meeting_sends_the_idempotency_token_and_eu_media_region(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_response(
        "create_meeting",
        {"Meeting": meeting()},
        {
            "ClientRequestToken": "appt_123-g1",
            "ExternalMeetingId": "appt_123",
            "MediaRegion": "eu-central-1",
            "MeetingFeatures": ANY,
        },
    )
    assert gateway.create_meeting(client_request_token="appt_123-g1", external_meeting_id="appt_123")["MeetingId"] == (
        MEETING_ID
    )


def test_attendees_may_share_their_screen(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_response(
        "create_attendee",
        {"Attendee": attendee("u_1")},
        {"MeetingId": MEETING_ID, "ExternalUserId": "u_1", "Capabilities": ATTENDEE_CAPABILITIES},
    )
    assert ATTENDEE_CAPABILITIES["Content"] == "SendReceive" == ATTENDEE_CAPABILITIES["Video"]
    assert gateway.create_attendee(MEETING_ID, "u_1")["ExternalUserId"] == "u_1"


def test_throttling_is_retried_with_growing_backoff(stubbed):
    gateway, stubber, sleeps = stubbed
    for _ in range(3):
        stubber.add_client_error("create_attendee", "ThrottlingException", "Rate exceeded", 429)
    stubber.add_response("create_attendee", {"Attendee": attendee("u_1")})

    assert gateway.create_attendee(MEETING_ID, "u_1")["ExternalUserId"] == "u_1"
    assert len(sleeps) == 3 and gateway.calls == 4
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (0.1, 0.2, 0.4), strict=True))


def test_throttling_that_persists_becomes_503(stubbed):
    gateway, stubber, sleeps = stubbed
    for _ in range(5):
        stubber.add_client_error("create_meeting", "ThrottlingException", "Rate exceeded", 429)
    with pytest.raises(ChimeUnavailable):
        gateway.create_meeting(client_request_token="tok-1", external_meeting_id="appt_123")
    assert len(sleeps) == 4


def test_service_unavailable_is_503_with_chimes_retry_after(stubbed):
    gateway, stubber, sleeps = stubbed
    stubber.add_client_error(
        "create_meeting",
        "ServiceUnavailableException",
        "down",
        503,
        response_meta={"HTTPHeaders": {"retry-after": "7"}},
    )
    with pytest.raises(ChimeUnavailable) as caught:
        gateway.create_meeting(client_request_token="tok-1", external_meeting_id="appt_123")
    assert caught.value.retry_after == 7 and caught.value.status == 503 and sleeps == []


def test_not_found_means_the_meeting_is_gone(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_client_error("create_attendee", "NotFoundException", f"Meeting {MEETING_ID} not found", 404)
    stubber.add_client_error("delete_meeting", "NotFoundException", "gone", 404)
    with pytest.raises(ChimeMeetingGone):
        gateway.create_attendee(MEETING_ID, "u_1")
    gateway.delete_meeting(MEETING_ID)  # already gone counts as ended


def test_other_errors_are_502_without_chimes_message(stubbed):
    gateway, stubber, _ = stubbed
    stubber.add_client_error("create_meeting", "BadRequestException", "ExternalMeetingId Jane Doe invalid", 400)
    with pytest.raises(UpstreamError) as caught:
        gateway.create_meeting(client_request_token="tok-1", external_meeting_id="appt_123")
    assert "Jane" not in caught.value.message and "BadRequestException" in caught.value.message


def test_batch_of_250_goes_in_chunks_of_100_and_reports_partial_failures(stubbed):
    gateway, stubber, _ = stubbed
    users = [f"u_{i:03d}" for i in range(250)]
    sizes: list[int] = []
    gateway._client.meta.events.register(  # type: ignore[attr-defined]
        "provide-client-params.chime-sdk-meetings.BatchCreateAttendee",
        lambda params, **_: sizes.append(len(params["Attendees"])),
    )
    # Chunks run concurrently and the Stubber answers in call order: every answer has one success and
    # one per-user error, whichever chunk it lands on.
    for n in range(3):
        stubber.add_response(
            "batch_create_attendee",
            {
                "Attendees": [attendee(f"ok_{n}")],
                "Errors": [{"ExternalUserId": f"bad_{n}", "ErrorCode": "Conflict", "ErrorMessage": "no"}],
            },
            {"MeetingId": MEETING_ID, "Attendees": ANY},
        )

    result = gateway.batch_create_attendees(MEETING_ID, users)

    assert sorted(sizes) == [50, 100, 100] and gateway.calls == 3
    assert {a["ExternalUserId"] for a in result.attendees} == {"ok_0", "ok_1", "ok_2"}
    assert {e["ExternalUserId"] for e in result.errors} == {"bad_0", "bad_1", "bad_2"}


def test_batch_chunk_sizes_and_partial_results_with_the_emulator():
    emulator = ChimeEmulator()
    sizes: list[int] = []
    original = emulator.batch_create_attendee

    def spy(**params):
        sizes.append(len(params["Attendees"]))
        return original(**params)

    emulator.batch_create_attendee = spy  # type: ignore[method-assign]
    gateway = ChimeGateway(emulator, media_region="eu-central-1")
    meeting_id = gateway.create_meeting(client_request_token="tok-1", external_meeting_id="appt_1")["MeetingId"]
    gateway.create_attendee(meeting_id, "u_host")

    result = gateway.batch_create_attendees(meeting_id, [f"u_{i:03d}" for i in range(260)])

    assert sorted(sizes) == [60, 100, 100]
    assert len(result.attendees) == 249  # 250 per meeting, the host holds one
    assert len(result.errors) == 11 and {e["ErrorCode"] for e in result.errors} == {"LimitExceeded"}


def test_a_failed_chunk_is_reported_per_user_and_the_others_kept():
    emulator = ChimeEmulator()
    gateway = ChimeGateway(emulator, media_region="eu-central-1", sleep=lambda _: None)
    meeting_id = gateway.create_meeting(client_request_token="tok-1", external_meeting_id="appt_1")["MeetingId"]
    emulator.fail_next["BatchCreateAttendee"] = ["ServiceUnavailableException"]

    result = gateway.batch_create_attendees(meeting_id, [f"u_{i:03d}" for i in range(150)])

    assert len(result.attendees) + len(result.errors) == 150
    assert len(result.errors) in (50, 100) and {e["ErrorCode"] for e in result.errors} == {"chime_unavailable"}


# --- the emulator keeps the service's rules --------------------------------------------------------
def test_emulator_responses_match_the_service_model():
    """Stubber validates responses against the output shapes: feed it what the emulator answers."""
    emulator = ChimeEmulator()
    made = emulator.create_meeting(ClientRequestToken="tok-1", ExternalMeetingId="appt_1", MediaRegion="eu-central-1")
    added = emulator.create_attendee(MeetingId=made["Meeting"]["MeetingId"], ExternalUserId="u_1")
    batch = emulator.batch_create_attendee(
        MeetingId=made["Meeting"]["MeetingId"], Attendees=[{"ExternalUserId": "u_2"}, {"ExternalUserId": "u_3"}]
    )
    client = boto3.client("chime-sdk-meetings", region_name="eu-central-1")
    with Stubber(client) as stubber:
        stubber.add_response("create_meeting", made)
        stubber.add_response("create_attendee", added)
        stubber.add_response("batch_create_attendee", batch)


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("create_meeting", {"ClientRequestToken": "t", "ExternalMeetingId": "appt_1", "MediaRegion": "eu-central-1"}),
        (
            "create_meeting",
            {"ClientRequestToken": "bad token!", "ExternalMeetingId": "a1", "MediaRegion": "eu-central-1"},
        ),
        ("create_meeting", {"ExternalMeetingId": "appt_1", "MediaRegion": "eu-central-1"}),
        ("create_attendee", {"MeetingId": MEETING_ID, "ExternalUserId": "u"}),
        ("create_attendee", {"MeetingId": MEETING_ID, "ExternalUserId": "u_1", "Capabilities": {"Audio": "Loud"}}),
    ],
)
def test_emulator_rejects_requests_the_model_rejects(operation: str, params: dict):
    with pytest.raises(ClientError) as caught:
        getattr(ChimeEmulator(), operation)(**params)
    assert caught.value.response["Error"]["Code"] == "BadRequestException"


def test_emulator_limits_and_lifecycle():
    emulator = ChimeEmulator()
    first = emulator.create_meeting(ClientRequestToken="tok-1", ExternalMeetingId="appt_1", MediaRegion="eu-central-1")
    again = emulator.create_meeting(ClientRequestToken="tok-1", ExternalMeetingId="appt_1", MediaRegion="eu-central-1")
    meeting_id = first["Meeting"]["MeetingId"]
    assert again["Meeting"]["MeetingId"] == meeting_id and emulator.meeting_count == 1

    with pytest.raises(ClientError, match="BadRequest"):
        emulator.batch_create_attendee(
            MeetingId=meeting_id, Attendees=[{"ExternalUserId": f"u_{i}"} for i in range(101)]
        )
    for start in (0, 100):
        emulator.batch_create_attendee(
            MeetingId=meeting_id, Attendees=[{"ExternalUserId": f"u_{i}"} for i in range(start, start + 100)]
        )
    emulator.batch_create_attendee(
        MeetingId=meeting_id, Attendees=[{"ExternalUserId": f"u_{i}"} for i in range(200, 250)]
    )
    with pytest.raises(ClientError, match="LimitExceeded"):
        emulator.create_attendee(MeetingId=meeting_id, ExternalUserId="u_251")

    emulator.delete_meeting(MeetingId=meeting_id)
    for call in (
        lambda: emulator.create_attendee(MeetingId=meeting_id, ExternalUserId="u_late"),
        lambda: emulator.get_meeting(MeetingId=meeting_id),
        lambda: emulator.delete_meeting(MeetingId=meeting_id),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "NotFoundException"
