"""The call's life from Chime's events: presence per attendee and per user, meetings left empty with a
recording running, the reconciler closing what Chime ended without telling us, recordings stuck."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from conftest import BUS, Api, LocalAws, World, create_body, query
from handlers.chime_meeting_events import handler as meeting_events
from handlers.reconcile import handler as reconcile_handler
from test_recordings import consent, new_meeting, recordings
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.server import LambdaContextStub
from videocall.runtime import Runtime


def attendee_event(event_type: str, meeting_id: str, attendee_id: str, at_ms: int, event_id: str,
                   external_user_id: str = "u_0123456789abcdef0123456789abcdef") -> dict[str, Any]:  # fmt: skip
    return {
        "version": "0", "id": event_id, "detail-type": "Chime Meeting State Change", "source": "aws.chime",
        "account": "111122223333", "time": "2026-11-26T10:00:00Z", "region": "eu-central-1", "resources": [],
        "detail": {"version": "0", "eventType": event_type, "timestamp": at_ms, "meetingId": meeting_id,
                   "attendeeId": attendee_id, "externalUserId": external_user_id, "networkType": "Voip",
                   "mediaRegion": "eu-central-1"},
    }  # fmt: skip


def send(event: dict[str, Any]) -> dict[str, Any]:
    return meeting_events(event, LambdaContextStub())


def attendee_of(api: Api, world: World, meeting_id: str, who) -> str:
    return api.post(f"/meetings/{meeting_id}/attendees", token=who.token).body["attendee"]["AttendeeId"]


def presence(clean_db: str) -> list[dict[str, Any]]:
    return query(clean_db, "SELECT attendee_id, user_id::text AS user_id, state, is_pipeline, network_type,"
                           " joined_at, left_at FROM attendee_presence ORDER BY joined_at NULLS LAST")  # fmt: skip


def empty_since(clean_db: str) -> Any:
    rows = query(clean_db, "SELECT person_joined, empty_since FROM session_presence")
    return rows[0] if rows else None


def test_joined_and_left_are_recorded_per_attendee_with_user_and_network(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = new_meeting(api, world)
    attendee = attendee_of(api, world, meeting_id, world.patient)

    emulator.play(meeting_id, attendee, "joined", network_type="Voip")
    BUS.deliver()
    (row,) = presence(clean_db)
    assert (row["user_id"], row["state"], row["network_type"], row["is_pipeline"]) == (
        world.patient.id, "joined", "Voip", False)  # fmt: skip
    emulator.play(meeting_id, attendee, "dropped")
    BUS.deliver()
    assert presence(clean_db)[0]["state"] == "dropped" and presence(clean_db)[0]["left_at"]
    assert empty_since(clean_db)["empty_since"] is not None


def test_a_late_joined_never_revives_an_attendee_who_left_after_it(api: Api, world: World, clean_db: str):
    meeting_id = new_meeting(api, world)
    attendee = attendee_of(api, world, meeting_id, world.patient)

    send(attendee_event("chime:AttendeeLeft", meeting_id, attendee, 2_000, "left"))
    late = send(attendee_event("chime:AttendeeJoined", meeting_id, attendee, 1_000, "joined-late"))
    repeat = send(attendee_event("chime:AttendeeLeft", meeting_id, attendee, 2_000, "left"))

    assert late["outcome"] == "unchanged" and repeat["outcome"] == "unchanged"
    assert presence(clean_db)[0]["state"] == "left"


def test_presence_is_per_user_an_old_attendees_late_left_after_a_rejoin_does_not_count(
    api: Api, world: World, clean_db: str
):
    meeting_id = new_meeting(api, world)
    send(attendee_event("chime:AttendeeJoined", meeting_id, "old-attendee", 1_000, "a",
                        "u_" + world.patient.id.replace("-", "")))  # fmt: skip
    query(clean_db, "UPDATE attendee_presence SET user_id = %s::uuid RETURNING 1", (world.patient.id,))
    new = attendee_of(api, world, meeting_id, world.patient)
    send(attendee_event("chime:AttendeeJoined", meeting_id, new, 2_000, "b"))
    send(attendee_event("chime:AttendeeLeft", meeting_id, "old-attendee", 3_000, "c"))  # the old one, late

    assert empty_since(clean_db) == {"person_joined": True, "empty_since": None}  # still there


def test_the_pipelines_own_attendee_is_never_a_person(api: Api, world: World, clean_db: str):
    meeting_id = new_meeting(api, world)
    send(attendee_event("chime:AttendeeJoined", meeting_id, "pipeline", 1_000, "p", "aws:MediaPipeline-abc"))
    assert presence(clean_db)[0]["is_pipeline"] is True
    assert empty_since(clean_db) == {"person_joined": False, "empty_since": None}


def test_meeting_left_empty_with_a_recording_is_ended_after_the_grace_period(
    api: Api, world: World, emulator: ChimeEmulator, runtime: Runtime, clean_db: str
):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    attendee = attendee_of(api, world, meeting_id, world.provider)
    emulator.play(meeting_id, attendee, "joined")
    emulator.play(meeting_id, attendee, "left")
    BUS.deliver()

    within_grace = reconcile_handler({}, LambdaContextStub())
    query(clean_db, "UPDATE session_presence SET empty_since = now() - interval '3 minutes' RETURNING 1")
    after_grace = reconcile_handler({}, LambdaContextStub())
    BUS.deliver()  # the emulator's MeetingEnded and pipeline events

    assert within_grace["endedEmpty"] == 0 and after_grace["endedEmpty"] == 1
    assert meeting_id in emulator.deleted
    (row,) = query(clean_db, "SELECT status, ended_at FROM video_call_sessions")
    assert row["status"] == "ended" and row["ended_at"]
    (rec,) = recordings(clean_db)
    assert (rec["state"], rec["stop_reason"]) == ("completed", "meeting_empty")


def test_a_meeting_nobody_joined_is_left_to_chime(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    assert reconcile_handler({}, LambdaContextStub())["endedEmpty"] == 0
    assert meeting_id not in emulator.deleted


def test_the_reconciler_closes_a_meeting_chime_ended_without_an_event(
    api: Api, world: World, emulator: ChimeEmulator, runtime: Runtime, clean_db: str
):
    meeting_id = new_meeting(api, world)
    live_id = new_meeting_for_other_appointment(api, world, clean_db)
    emulator.auto_end(meeting_id)
    BUS.clear()  # the MeetingEnded event is lost
    slept: list[float] = []
    runtime.lifecycle._sleep = slept.append

    outcome = reconcile_handler({}, LambdaContextStub())

    assert outcome["checked"] == 2 and outcome["closed"] == 1
    statuses = {
        r["meeting_id"]: r["status"] for r in query(clean_db, "SELECT meeting_id, status FROM video_call_sessions")
    }
    assert statuses == {meeting_id: "ended", live_id: "active"}
    assert slept == [1 / runtime.settings.reconcile_calls_per_second]  # paced under Chime's API limit
    audit = query(
        clean_db, "SELECT action FROM audit_events WHERE meeting_id = %s AND actor_user_id IS NULL", (meeting_id,)
    )
    assert [a["action"] for a in audit] == ["meeting.ended_by_chime"]


def new_meeting_for_other_appointment(api: Api, world: World, clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO appointments (id, provider_id, patient_id, scheduled_at) VALUES"
                     " ('appt_456', %s, %s, now())", (world.provider.id, world.patient.id))  # fmt: skip
    body = {k: v for k, v in create_body("appt_456", enableRecording=False).items() if k != "action"}
    return api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]


def test_recordings_stuck_processing_complete_when_files_landed_or_fail(
    api: Api, world: World, aws: LocalAws, runtime: Runtime, clean_db: str
):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.deliver_events = False
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    BUS.clear()  # the concatenation's events never arrive
    query(clean_db, "UPDATE recordings SET updated_at = now() - interval '2 hours' RETURNING 1")

    outcome = reconcile_handler({}, LambdaContextStub())

    assert outcome["recordings"]["completed"] == 1
    assert recordings(clean_db)[0]["state"] == "completed"  # the files had landed: listed and recorded

    api.deliver_events = True
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.deliver_events = False
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    BUS.clear()
    prefix = recordings(clean_db)[1]["s3_prefix"]
    for key in aws.objects(prefix + "/concatenated/"):
        aws.s3.delete_object(Bucket="videocall-test-recordings", Key=key)
    query(clean_db, "UPDATE recordings SET updated_at = now() - interval '2 hours' WHERE sequence = 2 RETURNING 1")

    failed = reconcile_handler({}, LambdaContextStub())

    assert failed["recordings"]["failed"] == 1
    second = recordings(clean_db)[1]
    assert second["state"] == "failed" and second["error_message"] == "no artifacts after stop"


FIXTURES = Path(__file__).parent / "fixtures" / "chime_events.json"
# What each fixture event does to the call, in order (the file holds one of every event type handled).
EXPECTED = [
    {"handled": "chime:MeetingStarted", "rang": 0},  # the patient was rung when the meeting was created
    {"handled": "chime:AttendeeJoined", "outcome": "joined"},
    {"handled": "chime:MediaPipelineInProgress", "outcome": "unchanged"},  # already on after the start
    {"handled": "chime:MediaPipelineTemporaryFailure", "outcome": "interrupted"},
    {"handled": "chime:MediaPipelineResumed", "outcome": "recording"},
    {"handled": "chime:AttendeeDropped", "outcome": "dropped"},
    {"handled": "chime:AttendeeJoined", "outcome": "joined"},
    {"handled": "chime:AttendeeLeft", "outcome": "left"},
    {"handled": "chime:AttendeeDeleted", "outcome": "deleted"},
    {"handled": "chime:MediaPipelinePermanentFailure", "outcome": "failed"},
    {"handled": "chime:MediaPipelineDeleted", "outcome": "unchanged"},  # failed stays failed
    {"handled": "chime:MeetingEnded", "changed": True, "recordingsStopped": 0},
]


def test_a_fixture_event_of_every_type_handled_and_its_effect(api: Api, world: World, clean_db: str):
    from handlers.chime_pipeline_events import handler as pipeline_events

    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    joined = api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token).body["attendee"]
    values = {"meetingId": meeting_id, "captureId": recordings(clean_db)[0]["capture_pipeline_id"],
              "attendeeId": joined["AttendeeId"], "externalUserId": joined["ExternalUserId"]}  # fmt: skip
    text = FIXTURES.read_text()
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    handlers = {"Chime Meeting State Change": meeting_events, "Chime Media Pipeline State Change": pipeline_events}

    outcomes = [handlers[e["detail-type"]](e, LambdaContextStub()) for e in json.loads(text)]
    repeated = [handlers[e["detail-type"]](e, LambdaContextStub()) for e in json.loads(text)]

    assert outcomes == EXPECTED
    assert all(r.get("outcome", "unchanged") == "unchanged" and not r.get("changed") for r in repeated)
    (attendee,) = presence(clean_db)
    assert (attendee["state"], attendee["network_type"], attendee["user_id"]) == ("deleted", "PSTN", world.patient.id)
    assert query(clean_db, "SELECT status FROM video_call_sessions")[0]["status"] == "ended"
