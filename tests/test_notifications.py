"""Push notifications: devices register their FCM token; a new meeting rings the appointment's other
participants, the ring is cancelled when they answer or the meeting ends; the waiting room's two
notifications; dead tokens deleted; nothing personal in a payload or a log. The local fake sender
(videocall.local.push) records the FCM JSON each push would have been; the last tests drive the real
firebase-admin sender against FCM's HTTP v1 endpoint (intercepted: no network), with its credential in
Secrets Manager (moto)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import BUS, Api, World, add_user, create_body, query
from handlers.chime_meeting_events import handler as meeting_events
from test_call_life import attendee_event
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.push import LocalPushSender, SentPush, read_outbox
from videocall.local.server import LambdaContextStub
from videocall.runtime import Runtime

PATIENT_ANDROID = "patient-android-installation-0001"
PATIENT_IOS = "patient-ios-installation-00000001"
PROVIDER_ANDROID = "provider-android-installation-01"
TOKENS = {
    PATIENT_ANDROID: "fcm-token-patient-android:APA91bHunGQ_patient_android_0001",
    PATIENT_IOS: "fcm-token-patient-ios:APA91bHunGQ_patient_ios_00000001",
    PROVIDER_ANDROID: "fcm-token-provider-android:APA91bHunGQ_provider_android_01",
}


def register(api: Api, who, installation: str, platform: str = "android", token: str | None = None):
    return api.put(f"/devices/{installation}", {"fcmToken": token or TOKENS[installation], "platform": platform},
                   token=who.token)  # fmt: skip


@pytest.fixture
def devices(api: Api, world: World) -> None:
    assert register(api, world.patient, PATIENT_ANDROID).status == 200
    assert register(api, world.patient, PATIENT_IOS, "ios").status == 200
    assert register(api, world.provider, PROVIDER_ANDROID).status == 200


@pytest.fixture
def sent(runtime: Runtime) -> LocalPushSender:
    sender = runtime.push_sender
    assert isinstance(sender, LocalPushSender)
    return sender


def plain_create(api: Api, who) -> Any:
    body = {k: v for k, v in create_body(enableRecording=False, enableTranscription=False).items() if k != "action"}
    return api.post("/meetings", body, token=who.token)


def kinds(pushes: list[SentPush]) -> list[tuple[str, str]]:
    return [(p.installation_id, p.kind) for p in pushes]


def devices_in_db(clean_db: str) -> list[dict[str, Any]]:
    return query(clean_db, "SELECT installation_id, user_id::text AS user_id, fcm_token, platform FROM push_devices"
                           " ORDER BY installation_id")  # fmt: skip


# --- devices --------------------------------------------------------------------------------------------------
def test_a_device_registers_refreshes_moves_to_another_user_and_is_removed_by_its_owner_only(
    api: Api, world: World, clean_db: str
):
    first = register(api, world.patient, PATIENT_ANDROID)
    assert first.status == 200 and first.body["registered"] is True and first.body["platform"] == "android"
    refreshed = register(api, world.patient, PATIENT_ANDROID, "android", "fcm-token-refreshed:APA91b_new")
    assert refreshed.status == 200
    assert [(d["user_id"], d["fcm_token"]) for d in devices_in_db(clean_db)] == [
        (world.patient.id, "fcm-token-refreshed:APA91b_new")]  # fmt: skip

    # Someone who knows only the installation id cannot take it (the patient's pushes would stop).
    taken = register(api, world.outsider, PATIENT_ANDROID, "android", "fcm-token-of-another-phone:APA91b_y")
    assert (taken.status, taken.code) == (409, "installation_in_use")
    assert [d["user_id"] for d in devices_in_db(clean_db)] == [world.patient.id]

    # The same phone signed in as the provider (it holds the device's current token): the provider's now.
    moved = register(api, world.provider, PATIENT_ANDROID, "android", "fcm-token-refreshed:APA91b_new")
    assert moved.status == 200
    assert [d["user_id"] for d in devices_in_db(clean_db)] == [world.provider.id]

    # The patient signs out there: not theirs any more, answered like a missing one.
    assert (api.delete(f"/devices/{PATIENT_ANDROID}", token=world.patient.token).code) == "device_not_found"
    gone = api.delete(f"/devices/{PATIENT_ANDROID}", token=world.provider.token)
    assert (gone.status, gone.body) == (200, {"installationId": PATIENT_ANDROID, "registered": False})
    assert devices_in_db(clean_db) == []
    again = api.delete(f"/devices/{PATIENT_ANDROID}", token=world.provider.token)
    assert (again.status, again.code) == (404, "device_not_found")

    audit = query(clean_db, "SELECT actor_user_id::text AS actor, action, details FROM audit_events"
                            " WHERE action LIKE 'device.%%' ORDER BY id")  # fmt: skip
    assert [(a["actor"], a["action"], a["details"].get("moved")) for a in audit] == [
        (world.patient.id, "device.register", False), (world.patient.id, "device.register", False),
        (world.provider.id, "device.register", True), (world.provider.id, "device.unregister", None),
    ]  # fmt: skip
    assert "fcm-token" not in json.dumps([a["details"] for a in audit])


def test_one_token_under_a_new_installation_replaces_the_old_row(api: Api, world: World, clean_db: str):
    register(api, world.patient, PATIENT_ANDROID)
    register(api, world.patient, "reinstalled-app-installation-1", "android", TOKENS[PATIENT_ANDROID])
    assert [d["installation_id"] for d in devices_in_db(clean_db)] == ["reinstalled-app-installation-1"]


def test_an_unregistered_user_gets_401_and_nobody_gets_401_token_missing(api: Api, world: World, clean_db: str):
    from videocall.local.devtools import emulator_id_token

    stranger = emulator_id_token("fb-not-a-user", "videocall-test")
    body = {"fcmToken": "fcm-token-x", "platform": "ios"}
    for reply in (api.put(f"/devices/{PATIENT_IOS}", body, token=stranger),
                  api.delete(f"/devices/{PATIENT_IOS}", token=stranger)):  # fmt: skip
        assert (reply.status, reply.code) == (401, "user_not_registered")
    assert api.put(f"/devices/{PATIENT_IOS}", body).code == "token_missing"
    assert devices_in_db(clean_db) == []


@pytest.mark.parametrize(
    ("installation", "body"),
    [
        (PATIENT_IOS, {"fcmToken": "fcm-token-x", "platform": "windows"}),
        (PATIENT_IOS, {"fcmToken": "fcm-token-x", "platform": "IOS"}),
        (PATIENT_IOS, {"fcmToken": "", "platform": "ios"}),
        (PATIENT_IOS, {"fcmToken": "x" * 4097, "platform": "ios"}),
        (PATIENT_IOS, {"fcmToken": "has a space", "platform": "ios"}),
        (PATIENT_IOS, {"fcmToken": 12345, "platform": "ios"}),
        (PATIENT_IOS, {"platform": "ios"}),
        (PATIENT_IOS, None),
        ("short", {"fcmToken": "fcm-token-x", "platform": "ios"}),
        ("has.dots.in.the.installation.id", {"fcmToken": "fcm-token-x", "platform": "ios"}),
        ("a" * 65, {"fcmToken": "fcm-token-x", "platform": "ios"}),
    ],
)
def test_bad_device_input_is_a_400_that_echoes_nothing(
    api: Api, world: World, clean_db: str, installation: str, body: Any
):
    reply = api.put(f"/devices/{installation}", body, token=world.patient.token)
    assert (reply.status, reply.code) == (400, "invalid_request"), reply.body
    assert "fcm-token-x" not in json.dumps(reply.body) and "has a space" not in json.dumps(reply.body)
    assert devices_in_db(clean_db) == []


def test_a_malformed_installation_id_on_delete_is_a_400(api: Api, world: World):
    assert api.delete("/devices/no", token=world.patient.token).code == "invalid_request"


def test_registering_and_removing_a_device_cost_one_round_trip_each(api: Api, world: World, runtime: Runtime):
    before = runtime.db.round_trips
    register(api, world.patient, PATIENT_IOS, "ios")
    assert runtime.db.round_trips - before == 1
    before = runtime.db.round_trips
    api.delete(f"/devices/{PATIENT_IOS}", token=world.patient.token)
    assert runtime.db.round_trips - before == 1


# --- ringing ------------------------------------------------------------------------------------------------
def test_a_new_meeting_rings_every_device_of_the_patient_and_none_of_the_providers(
    api: Api, world: World, devices: None, sent: LocalPushSender
):
    created = plain_create(api, world.provider)
    assert created.status == 201
    meeting_id = created.body["meeting"]["MeetingId"]

    assert sorted(kinds(sent.sent)) == sorted([(PATIENT_IOS, "incoming_call"), (PATIENT_ANDROID, "incoming_call")])
    assert sent.to(world.provider.id) == []
    for push in sent.sent:
        assert push.data == {"type": "incoming_call", "meetingId": meeting_id, "appointmentId": "appt_123",
                             "callerRole": "provider"}  # fmt: skip
        assert push.message["token"] == TOKENS[push.installation_id]
        assert push.message["data"] == push.data
    android = next(p.message for p in sent.sent if p.platform == "android")
    assert "notification" not in android and "apns" not in android  # data-only
    assert android["android"] == {"priority": "high", "ttl": "60s", "collapse_key": meeting_id}
    ios = next(p.message for p in sent.sent if p.platform == "ios")
    headers = ios["apns"]["headers"]
    assert headers["apns-priority"] == "10" and headers["apns-push-type"] == "alert"
    assert headers["apns-collapse-id"] == meeting_id
    assert 50 <= int(headers["apns-expiration"]) - time.time() <= 61
    aps = ios["apns"]["payload"]["aps"]
    assert aps["alert"]["title"] == "Incoming video consultation" and aps["sound"] == "default"


def test_a_meeting_the_patient_creates_rings_the_provider_as_a_patients_call(
    api: Api, world: World, devices: None, sent: LocalPushSender
):
    plain_create(api, world.patient)
    assert kinds(sent.sent) == [(PROVIDER_ANDROID, "incoming_call")]
    assert sent.sent[0].data["callerRole"] == "patient"


def test_a_retried_create_rings_nobody_again(api: Api, world: World, devices: None, sent: LocalPushSender):
    assert plain_create(api, world.provider).status == 201
    retried = plain_create(api, world.provider)
    legacy = api.legacy(create_body(enableRecording=False, enableTranscription=False), token=world.provider.token)
    assert retried.status == 200 and legacy.status == 200
    assert len(sent.sent) == 2  # the patient's two devices, once


def test_repeated_meeting_started_events_ring_once(api: Api, world: World, devices: None, sent: LocalPushSender):
    api.deliver_events = False
    plain_create(api, world.provider)
    (started,) = list(BUS._queue)
    BUS.clear()
    results = [meeting_events(started, LambdaContextStub()) for _ in range(3)]
    assert [r["rang"] for r in results] == [1, 0, 0]
    assert len(sent.sent) == 2


def test_a_meeting_started_long_ago_rings_nobody(api: Api, world: World, devices: None, sent: LocalPushSender):
    api.deliver_events = False
    plain_create(api, world.provider)
    (started,) = list(BUS._queue)
    BUS.clear()
    started["detail"]["timestamp"] -= 5 * 60 * 1000  # a redrive from the dead-letter queue, say
    assert meeting_events(started, LambdaContextStub()) == {"handled": "chime:MeetingStarted", "rang": 0}
    assert sent.sent == []


def answer(api: Api, emulator: ChimeEmulator, meeting_id: str, who) -> str:
    attendee = api.post(f"/meetings/{meeting_id}/attendees", token=who.token).body["attendee"]["AttendeeId"]
    emulator.play(meeting_id, attendee, "joined")
    BUS.deliver()
    return attendee


def test_answering_stops_the_ring_on_all_the_users_devices_once(
    api: Api, world: World, devices: None, sent: LocalPushSender, emulator: ChimeEmulator
):
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    attendee = answer(api, emulator, meeting_id, world.patient)

    cancels = [p for p in sent.sent if p.kind == "call_cancelled"]
    assert sorted(p.installation_id for p in cancels) == sorted([PATIENT_ANDROID, PATIENT_IOS])
    for push in cancels:
        assert push.data == {"type": "call_cancelled", "meetingId": meeting_id, "appointmentId": "appt_123",
                             "callerRole": "provider", "reason": "answered"}  # fmt: skip
    ios = next(p.message for p in cancels if p.platform == "ios")
    assert ios["apns"]["headers"]["apns-collapse-id"] == meeting_id  # replaces the ring's alert
    assert ios["apns"]["payload"]["aps"]["alert"]["title"] == "Video consultation answered"
    android = next(p.message for p in cancels if p.platform == "android")
    assert android["android"]["collapse_key"] == meeting_id and android["android"]["priority"] == "high"

    # Repeated joins (a reconnect, a repeated event) and the end: nothing more for whoever answered.
    repeat = attendee_event("chime:AttendeeJoined", meeting_id, attendee, int(time.time() * 1000), "again")
    meeting_events(repeat, LambdaContextStub())
    emulator.play(meeting_id, attendee, "left")
    emulator.play(meeting_id, attendee, "joined")
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    assert [p.kind for p in sent.sent].count("call_cancelled") == 2
    assert len(sent.sent) == 4


def test_the_end_cancels_the_ring_of_whoever_did_not_answer_once(
    api: Api, world: World, devices: None, sent: LocalPushSender, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    api.deliver_events = False
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    (ended,) = [e for e in BUS._queue if e["detail"]["eventType"] == "chime:MeetingEnded"]
    BUS.deliver()
    meeting_events(ended, LambdaContextStub())  # repeated

    cancels = [p for p in sent.sent if p.kind == "call_cancelled"]
    assert sorted(p.installation_id for p in cancels) == sorted([PATIENT_ANDROID, PATIENT_IOS])
    assert {p.data["reason"] for p in cancels} == {"ended"}
    ios = next(p.message for p in cancels if p.platform == "ios")
    assert ios["apns"]["payload"]["aps"]["alert"]["title"] == "Missed video consultation"
    assert sent.to(world.provider.id) == []
    assert query(clean_db, "SELECT state FROM call_rings") == [{"state": "cancelled"}]


def test_a_join_seen_before_the_meeting_started_event_means_no_ring(
    api: Api, world: World, devices: None, sent: LocalPushSender, emulator: ChimeEmulator
):
    api.deliver_events = False
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    (started,) = list(BUS._queue)
    BUS.clear()
    answer(api, emulator, meeting_id, world.patient)  # AttendeeJoined delivered first
    assert meeting_events(started, LambdaContextStub())["rang"] == 0
    assert sent.sent == []


def test_a_meeting_started_event_before_the_create_recorded_the_meeting_still_rings(
    api: Api, world: World, devices: None, sent: LocalPushSender, clean_db: str
):
    api.deliver_events = False
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    (started,) = list(BUS._queue)
    BUS.clear()
    # As if EventBridge were faster than the create's last statement: the session is still being created.
    query(clean_db, "UPDATE video_call_sessions SET meeting_id = NULL, status = 'creating' RETURNING 1")
    assert meeting_events(started, LambdaContextStub())["rang"] == 1
    assert {p.data["meetingId"] for p in sent.sent} == {meeting_id}


def test_the_ring_its_cancel_and_a_lobby_notification_cost_one_round_trip_each(
    api: Api, world: World, devices: None, runtime: Runtime, sent: LocalPushSender
):
    api.deliver_events = False
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    attendee = api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token).body["attendee"]["AttendeeId"]
    notifications = runtime.notifications
    steps = [
        lambda: BUS.deliver(),  # MeetingStarted: the ring statement only
        lambda: notifications.attendee_joined(meeting_id=meeting_id, attendee_id=attendee),
        lambda: notifications.meeting_ended(meeting_id=meeting_id),
        lambda: notifications.notify_admitted(
            meeting_id=meeting_id, appointment_id="appt_123", user_id=world.patient.id
        ),
    ]
    for step in steps:
        before = runtime.db.round_trips
        step()
        assert runtime.db.round_trips - before == 1
    assert [p.kind for p in sent.sent] == ["incoming_call"] * 2 + ["call_cancelled"] * 2 + ["admitted"] * 2


def test_a_sender_that_fails_never_fails_the_event(
    api: Api, world: World, devices: None, runtime: Runtime, monkeypatch, clean_db: str
):
    def broken(_pushes):
        raise ConnectionError("fcm down")

    monkeypatch.setattr(runtime.push_sender, "send", broken)
    plain_create(api, world.provider)
    handled = [r for e, r in BUS.delivered if e["detail"]["eventType"] == "chime:MeetingStarted"]
    assert handled == [{"handled": "chime:MeetingStarted", "rang": 1}]
    assert len(devices_in_db(clean_db)) == 3  # nothing deleted for a failure


def test_tokens_fcm_reports_unregistered_are_deleted(
    api: Api, world: World, devices: None, sent: LocalPushSender, clean_db: str
):
    sent.unregistered.add(TOKENS[PATIENT_IOS])
    plain_create(api, world.provider)
    assert kinds(sent.sent) == [(PATIENT_ANDROID, "incoming_call")]
    assert [d["installation_id"] for d in devices_in_db(clean_db)] == [PATIENT_ANDROID, PROVIDER_ANDROID]


def test_a_users_erasure_deletes_their_devices(api: Api, world: World, devices: None, clean_db: str):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
    erased = api.post("/admin/erasures", {"patientId": world.patient.id}, token=admin.token)
    assert erased.status == 200, erased.body
    assert [d["user_id"] for d in devices_in_db(clean_db)] == [world.provider.id]
    (audit,) = query(clean_db, "SELECT details FROM audit_events WHERE action = 'privacy.erase'")
    assert audit["details"]["devices_deleted"] == 2


def test_the_patients_export_lists_their_devices_without_the_fcm_token(
    api: Api, world: World, devices: None, clean_db: str
):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
    reply = api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token)
    assert reply.status == 200, reply.body
    assert [(d["installationId"], d["platform"]) for d in reply.body["devices"]] == [
        (PATIENT_ANDROID, "android"), (PATIENT_IOS, "ios")]  # fmt: skip
    assert all(d["registeredAt"] and d["updatedAt"] for d in reply.body["devices"])
    assert not any(token in json.dumps(reply.body) for token in TOKENS.values())


def test_retention_deletes_idle_devices_and_old_rings_but_a_held_appointments_rings_stay(
    api: Api, world: World, devices: None, sent: LocalPushSender, clean_db: str
):
    """Storage limitation: a device not registered again for DEVICE_IDLE_DAYS (FCM refuses a token idle
    for 270 days) and rings past RETENTION_DAYS_CALL_RINGS go with the daily retention job."""
    from handlers.apply_retention import handler as retention_handler

    plain_create(api, world.provider)  # rings the patient's two devices
    assert query(clean_db, "SELECT count(*) AS n FROM call_rings")[0]["n"] == 1
    query(clean_db, "UPDATE push_devices SET updated_at = now() - interval '271 days'"
                    " WHERE installation_id = %s RETURNING 1", (PATIENT_IOS,))  # fmt: skip
    query(clean_db, "UPDATE call_rings SET created_at = now() - interval '31 days' RETURNING 1")
    query(clean_db, "INSERT INTO legal_holds (appointment_id, reference, placed_by)"
                    " SELECT 'appt_123', 'case 1', %s::uuid RETURNING 1", (world.provider.id,))  # fmt: skip

    held = retention_handler({}, LambdaContextStub())

    assert held["push_devices_idle"] == 1 and held["call_rings"] == 0
    assert [d["installation_id"] for d in devices_in_db(clean_db)] == [PATIENT_ANDROID, PROVIDER_ANDROID]
    query(clean_db, "DELETE FROM legal_holds RETURNING 1")
    lifted = retention_handler({}, LambdaContextStub())
    assert lifted["call_rings"] == 1 and lifted["push_devices_idle"] == 0
    assert query(clean_db, "SELECT count(*) AS n FROM call_rings")[0]["n"] == 0


# --- the waiting room ---------------------------------------------------------------------------------------
def test_the_lobby_notifies_the_provider_of_a_waiting_patient_and_the_patient_when_admitted(
    api: Api, world: World, devices: None, runtime: Runtime, sent: LocalPushSender
):
    meeting_id = "6f1c2f8e-0000-4000-8000-000000000001"
    runtime.notifications.notify_patient_waiting(meeting_id=meeting_id, appointment_id="appt_123",
                                                 provider_id=world.provider.id)  # fmt: skip
    assert kinds(sent.sent) == [(PROVIDER_ANDROID, "patient_waiting")]
    assert sent.sent[0].data == {"type": "patient_waiting", "meetingId": meeting_id, "appointmentId": "appt_123",
                                 "callerRole": "patient"}  # fmt: skip

    runtime.notifications.notify_admitted(meeting_id=meeting_id, appointment_id="appt_123", user_id=world.patient.id)
    admitted = [p for p in sent.sent if p.kind == "admitted"]
    assert sorted(p.installation_id for p in admitted) == sorted([PATIENT_ANDROID, PATIENT_IOS])
    ios = next(p.message for p in admitted if p.platform == "ios")
    assert ios["apns"]["payload"]["aps"]["alert"]["title"] == "You have been admitted"
    assert ios["apns"]["headers"]["apns-collapse-id"] == f"admitted-{meeting_id}"
    assert all(p.data == {"type": "admitted", "meetingId": meeting_id, "appointmentId": "appt_123"} for p in admitted)


def test_a_lobby_notification_never_raises(world: World, runtime: Runtime, sent: LocalPushSender, monkeypatch):
    def broken(_user_ids):
        raise psycopg.OperationalError("gone")

    monkeypatch.setattr(runtime.notifications._repository, "devices_of", broken)
    runtime.notifications.notify_admitted(meeting_id="m", appointment_id="appt_123", user_id=world.patient.id)
    runtime.notifications.notify_admitted(meeting_id="m", appointment_id="appt_123", user_id=world.nurse.id)
    assert sent.sent == []


# --- privacy: payloads and logs -----------------------------------------------------------------------------


def test_no_name_in_any_payload_and_no_token_or_name_in_the_logs(
    api: Api, world: World, devices: None, sent: LocalPushSender, emulator: ChimeEmulator, runtime: Runtime,
    captured: io.StringIO,
):  # fmt: skip
    sent.unregistered.add(TOKENS[PROVIDER_ANDROID])
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]
    answer(api, emulator, meeting_id, world.patient)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    plain_create(api, world.patient)  # rings the provider, whose token is dead
    runtime.notifications.notify_patient_waiting(meeting_id=meeting_id, appointment_id="appt_123",
                                                 provider_id=world.provider.id)  # fmt: skip
    runtime.notifications.notify_admitted(meeting_id=meeting_id, appointment_id="appt_123", user_id=world.patient.id)
    assert {p.kind for p in sent.sent} == {"incoming_call", "call_cancelled", "admitted"}

    payloads = json.dumps([p.message for p in sent.sent]).lower()
    names = [part.lower() for p in world.people for part in p.name.split() if len(part) > 3]
    assert names and not [n for n in names if n in payloads]
    logs = captured.getvalue()
    assert "push" in logs  # the pushes were logged (by counts and codes)
    for secret in (*TOKENS.values(), *(p.name for p in world.people), *(p.token for p in world.people)):
        assert secret not in logs


# --- the local stack: the outbox and `videocall dev notifications` -------------------------------------------
def test_the_local_outbox_shows_what_was_sent_without_tokens(tmp_path, monkeypatch, capsys, world: World):
    from videocall.cli import main
    from videocall.notifications.models import Push

    monkeypatch.setenv("VIDEOCALL_DATA_DIR", str(tmp_path))
    from videocall.local.push import outbox_path

    sender = LocalPushSender(outbox_path())
    push = Push(token="fcm-secret-token", platform="ios", kind="incoming_call",
                data={"type": "incoming_call", "meetingId": "m-1", "appointmentId": "appt_123", "callerRole": "provider"},
                collapse_id="m-1", ttl_seconds=60, alert=None, user_id=world.patient.id,
                installation_id=PATIENT_IOS)  # fmt: skip
    assert [o.status for o in sender.send([push, push])] == ["sent", "sent"]

    assert main(["dev", "notifications", "--limit", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 and lines[0]["type"] == "incoming_call" and lines[0]["userId"] == world.patient.id
    assert lines[0]["message"]["apns"]["headers"]["apns-collapse-id"] == "m-1"
    assert "fcm-secret-token" not in outbox_path().read_text()
    assert len(read_outbox(limit=10)) == 2
    assert main(["dev", "notifications", "--clear"]) == 0
    assert read_outbox() == []


# --- the real sender: firebase-admin's request path, FCM and Google's token endpoint intercepted -------------
FCM_PROJECT = "videocall-push-test"
FCM_URL = f"https://fcm.googleapis.com/v1/projects/{FCM_PROJECT}/messages:send"
TOKEN_URL = "https://oauth2.googleapis.com/token"


def service_account() -> dict[str, str]:
    """A throwaway service-account key (Google never sees it: its token endpoint is intercepted)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    return {"type": "service_account", "project_id": FCM_PROJECT, "private_key_id": "test-key-1", "private_key": pem,
            "client_email": f"push@{FCM_PROJECT}.iam.gserviceaccount.com", "client_id": "1234567890",
            "token_uri": TOKEN_URL}  # fmt: skip


class FakeFcm:
    """FCM's HTTP v1 send endpoint: records each request; answers 404 UNREGISTERED for dead tokens."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.authorizations: set[str] = set()
        self.dead: set[str] = set()
        self.token_requests = 0

    def send(self, request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        self.requests.append(body)
        self.authorizations.add(request.headers.get("Authorization", ""))
        if body["message"].get("token") in self.dead:
            error = {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
                               "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                            "errorCode": "UNREGISTERED"}]}}  # fmt: skip
            return 404, {"Content-Type": "application/json"}, json.dumps(error)
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"name": f"projects/{FCM_PROJECT}/messages/0:{len(self.requests)}"})  # fmt: skip

    def oauth(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.token_requests += 1
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": "ya29.test-access-token", "expires_in": 3600, "token_type": "Bearer"})  # fmt: skip

    def by_token(self) -> dict[str, dict[str, Any]]:
        return {r["message"]["token"]: r["message"] for r in self.requests}


@pytest.fixture
def fcm(aws) -> Iterator[FakeFcm]:
    import responses

    fake = FakeFcm()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, TOKEN_URL, callback=fake.oauth)
        mocked.add_callback(responses.POST, FCM_URL, callback=fake.send)
        yield fake


@pytest.fixture
def push_secret(aws) -> str:
    import boto3

    client = boto3.client("secretsmanager", region_name="eu-central-1")
    return client.create_secret(Name="videocall/test/push-credentials", SecretString=json.dumps(service_account()))[
        "ARN"]  # fmt: skip


@pytest.fixture
def fcm_sender(push_secret: str) -> Iterator[Any]:
    import uuid

    import firebase_admin
    from videocall.notifications.sender import FcmSender

    name = f"push-test-{uuid.uuid4().hex[:8]}"
    yield FcmSender(push_secret, app_name=name)
    with contextlib.suppress(ValueError):  # never initialised (the test sent nothing)
        firebase_admin.delete_app(firebase_admin.get_app(name))


def test_the_real_sender_sends_what_fcm_expects_and_deletes_a_token_fcm_reports_unregistered(
    api: Api, world: World, devices: None, runtime: Runtime, fcm: FakeFcm, fcm_sender: Any, clean_db: str,
    emulator: ChimeEmulator,
):  # fmt: skip
    runtime.__dict__["push_sender"] = fcm_sender  # the firebase-admin sender instead of the local fake
    fcm.dead.add(TOKENS[PATIENT_IOS])
    meeting_id = plain_create(api, world.provider).body["meeting"]["MeetingId"]

    sent = fcm.by_token()
    assert set(sent) == {TOKENS[PATIENT_ANDROID], TOKENS[PATIENT_IOS]}  # the provider's device: not rung
    assert fcm.authorizations == {"Bearer ya29.test-access-token"}
    token_requests = fcm.token_requests  # (send_each's parallel requests may each fetch the first access token)
    assert token_requests >= 1
    android, ios = sent[TOKENS[PATIENT_ANDROID]], sent[TOKENS[PATIENT_IOS]]
    expected = {"type": "incoming_call", "meetingId": meeting_id, "appointmentId": "appt_123", "callerRole": "provider"}
    assert android["data"] == expected and ios["data"] == expected
    assert android["android"] == {"priority": "high", "ttl": "60s", "collapse_key": meeting_id}
    assert "notification" not in android and "apns" not in android
    assert ios["apns"]["headers"]["apns-priority"] == "10" and ios["apns"]["headers"]["apns-push-type"] == "alert"
    assert ios["apns"]["headers"]["apns-collapse-id"] == meeting_id
    assert int(ios["apns"]["headers"]["apns-expiration"]) > time.time()
    assert ios["apns"]["payload"]["aps"]["alert"] == {"title": "Incoming video consultation", "body": "Tap to join."}
    # FCM answered 404 UNREGISTERED for the iOS token: that device is gone, the others stay.
    assert [d["installation_id"] for d in devices_in_db(clean_db)] == [PATIENT_ANDROID, PROVIDER_ANDROID]

    answer(api, emulator, meeting_id, world.patient)  # the cancel goes to the device that is left
    cancel = fcm.requests[-1]["message"]
    assert cancel["token"] == TOKENS[PATIENT_ANDROID] and cancel["data"]["type"] == "call_cancelled"
    assert len(fcm.requests) == 3 and fcm.token_requests == token_requests  # the access token is reused
    bodies = json.dumps(fcm.requests).lower()
    assert not [p for p in world.people for part in p.name.lower().split() if len(part) > 3 and part in bodies]


def test_the_real_sender_batches_by_500(fcm: FakeFcm, fcm_sender: Any):
    from videocall.notifications.models import Push

    pushes = [Push(token=f"tok-{i}", platform="android", kind="admitted", data={"type": "admitted"},
                   collapse_id="c", ttl_seconds=300, alert=None, user_id="u", installation_id=f"inst-{i:012d}")
              for i in range(501)]  # fmt: skip
    fcm.dead.add("tok-500")
    outcomes = fcm_sender.send(pushes)
    assert [o.status for o in outcomes] == ["sent"] * 500 + ["unregistered"]
    assert outcomes[-1].code == "UnregisteredError" and len(fcm.requests) == 501


def test_a_secret_without_a_value_disables_sending_for_a_while_without_failing(aws, fcm: FakeFcm):
    import boto3
    from videocall.notifications.models import Push
    from videocall.notifications.sender import FcmSender

    client = boto3.client("secretsmanager", region_name="eu-central-1")
    arn = client.create_secret(Name="videocall/test/empty")["ARN"]  # created by CDK; ops have not filled it yet
    calls: list[str] = []

    def secrets(region: str) -> Any:
        calls.append(region)
        return client

    sender = FcmSender(arn, app_name="push-test-empty", secrets_client=secrets)
    push = Push(token="tok", platform="ios", kind="admitted", data={"type": "admitted"}, collapse_id="c",
                ttl_seconds=60, alert=None, user_id="u", installation_id="inst-000000000001")  # fmt: skip
    assert [o.code for o in sender.send([push])] == ["credentials_unavailable"]
    assert [o.code for o in sender.send([push])] == ["credentials_unavailable"]
    assert calls == ["eu-central-1"] and fcm.requests == []  # tried once, not on every push


def test_the_runtime_picks_the_sender_by_setting(settings, runtime: Runtime):
    from dataclasses import replace

    from videocall.notifications.sender import DisabledSender, FcmSender
    from videocall.runtime import Runtime as Built

    assert isinstance(runtime.push_sender, LocalPushSender)  # emulator backend: the local fake
    arn = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:videocall/push-AbCdEf"
    assert isinstance(Built(replace(settings, push_credentials_secret_arn=arn), runtime.db).push_sender, FcmSender)
    disabled = Built(settings, runtime.db).push_sender
    assert isinstance(disabled, DisabledSender)
    assert [o.status for o in disabled.send([])] == []


def test_a_patient_waiting_before_the_provider_started_notifies_without_a_meeting(
    world: World, devices: None, runtime: Runtime, sent: LocalPushSender
):
    runtime.notifications.notify_patient_waiting(meeting_id=None, appointment_id="appt_123",
                                                 provider_id=world.provider.id)  # fmt: skip
    (push,) = sent.sent
    assert push.data == {"type": "patient_waiting", "appointmentId": "appt_123", "callerRole": "patient"}
    assert "collapse_key" not in push.message["android"] and push.message["android"]["priority"] == "high"
