"""The controls a clinician runs a call with: the waiting room, removing someone, mute / video / share
enforced by Chime (and kept across a rejoin), mute everyone, raised hands, the participant list."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from botocore.stub import Stubber
from conftest import BUS, Api, Person, World, add_user, create_body, query
from videocall.local.chime_emulator import ChimeEmulator
from videocall.meetings.chime import ChimeGateway
from videocall.runtime import Runtime

NO_MEDIA = {"enableRecording": False, "enableTranscription": False}


def body(**extra: Any) -> dict[str, Any]:
    return {k: v for k, v in create_body(**NO_MEDIA, **extra).items() if k != "action"}


def start(api: Api, world: World, **extra: Any) -> str:
    reply = api.post("/meetings", body(**extra), token=world.provider.token)
    assert reply.status == 201, reply.body
    return reply.body["meeting"]["MeetingId"]


def join(api: Api, meeting_id: str, who: Person):
    return api.post(f"/meetings/{meeting_id}/attendees", token=who.token)


def group(api: Api, world: World, meeting_id: str, *people: Person) -> dict[str, str]:
    reply = api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [p.id for p in people]},
                     token=world.provider.token)  # fmt: skip
    assert reply.status == 200 and not reply.body["errors"], reply.body
    return {a["userId"]: a["attendee"]["AttendeeId"] for a in reply.body["attendees"]}


def participants(api: Api, meeting_id: str, who: Person) -> dict[str, dict[str, Any]]:
    reply = api.get(f"/meetings/{meeting_id}/participants", token=who.token)
    assert reply.status == 200, reply.body
    return {p["userId"]: p for p in reply.body["participants"]}


# --- the waiting room -------------------------------------------------------------------------------
def test_waiting_room_end_to_end(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    meeting_id = start(api, world, waitingRoom=True)

    waiting = api.post("/meetings", body(), token=world.patient.token)  # the patient's app "creates" too
    assert waiting.status == 202
    assert waiting.body == {"status": "waiting", "appointmentId": "appt_123", "meetingId": meeting_id,
                            "retryAfterSeconds": 5}  # fmt: skip
    assert waiting.headers["Retry-After"] == "5"
    assert join(api, meeting_id, world.patient).status == 202  # polling: still waiting, no JoinToken
    assert emulator.attendee_count(meeting_id) == 1  # only the provider's attendee

    lobby = api.get(f"/meetings/{meeting_id}/lobby", token=world.provider.token)
    assert [w["userId"] for w in lobby.body["waiting"]] == [world.patient.id]
    assert api.get(f"/meetings/{meeting_id}/lobby", token=world.patient.token).code == "not_a_clinical_controller"
    assert participants(api, meeting_id, world.provider)[world.patient.id]["presence"] == "waiting"

    admit = api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "admit"},
                     token=world.provider.token)  # fmt: skip
    assert admit.status == 200 and admit.body["decision"] == "admit"
    joined = join(api, meeting_id, world.patient)
    assert joined.status == 200 and joined.body["attendee"]["JoinToken"]
    assert api.get(f"/meetings/{meeting_id}/lobby", token=world.provider.token).body["waiting"] == []

    actions = [r["action"] for r in query(clean_db, "SELECT action FROM audit_events WHERE action LIKE 'lobby.%'"
                                                    " ORDER BY id")]  # fmt: skip
    assert actions[:2] == ["lobby.configure", "lobby.wait"] and "lobby.decide" in actions
    assert actions.count("lobby.wait") == 1  # polling does not re-enter the lobby


def test_a_denied_patient_gets_403_and_can_be_admitted_later(api: Api, world: World):
    meeting_id = start(api, world, waitingRoom=True)
    assert join(api, meeting_id, world.patient).status == 202
    deny = api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "deny"},
                    token=world.provider.token)  # fmt: skip
    assert deny.status == 200
    refused = join(api, meeting_id, world.patient)
    assert (refused.status, refused.code) == (403, "admission_denied")
    assert api.post("/meetings", body(), token=world.patient.token).code == "admission_denied"
    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "admit"}, token=world.provider.token)
    assert join(api, meeting_id, world.patient).status == 200


def test_a_patient_waits_before_the_meeting_exists_without_a_chime_meeting_being_made(
    api: Api, world: World, emulator: ChimeEmulator
):
    first = start(api, world, waitingRoom=True)
    api.delete(f"/meetings/{first}", token=world.provider.token)  # the setting belongs to the appointment
    meetings_before = emulator.meeting_count

    waiting = api.post("/meetings", body(), token=world.patient.token)
    assert (waiting.status, waiting.body["meetingId"]) == (202, None)
    assert emulator.meeting_count == meetings_before  # no empty meeting left to auto-end

    second = start(api, world)  # the provider starts the call and finds the patient waiting
    lobby = api.get(f"/meetings/{second}/lobby", token=world.provider.token).body["waiting"]
    assert [w["userId"] for w in lobby] == [world.patient.id]


def test_only_the_provider_turns_the_waiting_room_on_and_nothing_is_made_when_a_patient_tries(
    api: Api, world: World, emulator: ChimeEmulator
):
    refused = api.post("/meetings", body(waitingRoom=False), token=world.patient.token)
    assert (refused.status, refused.code) == (403, "not_a_clinical_controller")
    assert emulator.meeting_count == 0


def test_without_a_waiting_room_the_patient_joins_at_once(api: Api, world: World):
    meeting_id = start(api, world)
    assert join(api, meeting_id, world.patient).status == 200


def test_the_old_contract_answers_409_waiting_room_and_never_202(api: Api, world: World, clean_db: str):
    meeting_id = start(api, world, waitingRoom=True)
    for reply in (
        api.legacy(create_body(**NO_MEDIA), token=world.patient.token),
        api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token),
    ):
        assert (reply.status, reply.code) == (409, "waiting_room")
        assert "update the app" in reply.body["error"]["message"]
    assert query(clean_db, "SELECT * FROM lobby_entries") == []  # nobody waits for an app that cannot poll


# --- remove ----------------------------------------------------------------------------------------
def test_removing_a_participant_disconnects_them_and_keeps_them_out_until_admitted(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = start(api, world)
    attendee = join(api, meeting_id, world.patient).body["attendee"]["AttendeeId"]
    emulator.play(meeting_id, attendee, "joined")
    BUS.deliver()

    removed = api.delete(f"/meetings/{meeting_id}/participants/{world.patient.id}", token=world.provider.token)
    assert removed.status == 200 and removed.body["presence"] == "removed"
    assert emulator.attendee_count(meeting_id) == 1  # Chime's attendee is gone (they are disconnected)
    assert participants(api, meeting_id, world.provider)[world.patient.id]["presence"] == "removed"
    (audit,) = query(clean_db, "SELECT actor_user_id::text AS actor, details FROM audit_events"
                               " WHERE action = 'participant.remove'")  # fmt: skip
    assert audit == {"actor": world.provider.id, "details": {"user_id": world.patient.id}}

    for attempt in (join(api, meeting_id, world.patient), api.post("/meetings", body(), token=world.patient.token)):
        assert (attempt.status, attempt.code) == (403, "participant_removed")

    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "admit"}, token=world.provider.token)
    again = join(api, meeting_id, world.patient)
    assert again.status == 200 and again.body["attendee"]["AttendeeId"] != attendee


def test_a_removed_group_member_is_not_silently_re_added_by_batch_join(api: Api, world: World):
    meeting_id = start(api, world)
    group(api, world, meeting_id, world.interpreter)
    api.delete(f"/meetings/{meeting_id}/participants/{world.interpreter.id}", token=world.provider.token)
    reply = api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.interpreter.id]},
                     token=world.provider.token)  # fmt: skip
    assert [e["code"] for e in reply.body["errors"]] == ["participant_removed"]
    assert join(api, meeting_id, world.interpreter).code == "participant_removed"


@pytest.mark.parametrize(
    ("who", "target", "status", "code"),
    [
        ("provider", "outsider", 404, "participant_not_in_meeting"),  # a registered user not in this meeting
        ("provider", "not-a-user-id", 404, "participant_not_in_meeting"),
        ("provider", "provider", 409, "cannot_remove_yourself"),
        ("nurse", "provider", 403, "cannot_moderate_provider"),
        ("patient", "nurse", 403, "not_a_clinical_controller"),
        ("outsider", "patient", 404, "meeting_not_found"),
    ],
)
def test_remove_refusals(api: Api, world: World, who: str, target: str, status: int, code: str):
    meeting_id = start(api, world)
    join(api, meeting_id, world.patient)
    group(api, world, meeting_id, world.nurse)
    target_id = getattr(world, target).id if hasattr(world, target) else target
    reply = api.delete(f"/meetings/{meeting_id}/participants/{target_id}", token=getattr(world, who).token)
    assert (reply.status, reply.code) == (status, code)


# --- mute, video, share ------------------------------------------------------------------------------
def test_mute_is_enforced_by_chime_merged_and_survives_a_rejoin(
    api: Api, world: World, emulator: ChimeEmulator, runtime: Runtime
):
    meeting_id = start(api, world)
    attendee = join(api, meeting_id, world.patient).body["attendee"]["AttendeeId"]
    path = f"/meetings/{meeting_id}/participants/{world.patient.id}"

    before = runtime.db.round_trips, runtime.chime.calls
    muted = api.patch(path, {"audio": "off"}, token=world.provider.token)
    assert (runtime.db.round_trips - before[0], runtime.chime.calls - before[1]) == (2, 1)
    assert muted.body["allowed"] == {"audio": "off", "video": "on", "content": "on"}
    assert emulator.capabilities(meeting_id, attendee) == {"Audio": "Receive", "Video": "SendReceive",
                                                           "Content": "SendReceive"}  # fmt: skip

    # A second change keeps the first (Chime wants all three; the server merges). Video off = Receive,
    # never None: Chime refuses content Receive unless video can receive.
    api.patch(path, {"video": "off", "content": "off"}, token=world.provider.token)
    assert emulator.capabilities(meeting_id, attendee) == {"Audio": "Receive", "Video": "Receive",
                                                           "Content": "Receive"}  # fmt: skip

    # Their attendee is gone (app reinstalled, Chime deleted it): the rejoin creates a new one, still muted.
    emulator.delete_attendee(MeetingId=meeting_id, AttendeeId=attendee)
    again = join(api, meeting_id, world.patient).body["attendee"]
    assert again["AttendeeId"] != attendee
    assert emulator.capabilities(meeting_id, again["AttendeeId"]) == {"Audio": "Receive", "Video": "Receive",
                                                                      "Content": "Receive"}  # fmt: skip

    api.patch(path, {"audio": "on"}, token=world.provider.token)
    assert emulator.capabilities(meeting_id, again["AttendeeId"])["Audio"] == "SendReceive"


def test_a_participant_not_yet_joined_arrives_with_what_was_set(api: Api, world: World, emulator: ChimeEmulator):
    meeting_id = start(api, world)
    reply = api.patch(f"/meetings/{meeting_id}/participants/{world.patient.id}", {"video": "off"},
                      token=world.provider.token)  # fmt: skip
    assert reply.status == 200
    attendee = join(api, meeting_id, world.patient).body["attendee"]["AttendeeId"]
    assert emulator.capabilities(meeting_id, attendee)["Video"] == "Receive"


@pytest.mark.parametrize("bad", [{}, {"audio": "mute"}, {"audio": True}, {"video": None, "content": None}])
def test_patch_bad_bodies_are_400(api: Api, world: World, bad: dict[str, Any]):
    meeting_id = start(api, world)
    reply = api.patch(f"/meetings/{meeting_id}/participants/{world.patient.id}", bad, token=world.provider.token)
    assert reply.status == 400, reply.body


def test_a_patient_cannot_mute_anyone(api: Api, world: World):
    meeting_id = start(api, world)
    join(api, meeting_id, world.patient)
    reply = api.patch(f"/meetings/{meeting_id}/participants/{world.provider.id}", {"audio": "off"},
                      token=world.patient.token)  # fmt: skip
    assert (reply.status, reply.code) == (403, "not_a_clinical_controller")
    assert api.post(f"/meetings/{meeting_id}/participants/mute-all", token=world.patient.token).status == 403


def test_mute_everyone_except_me_and_late_joiners_arrive_muted(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = start(api, world)
    provider_attendee = api.post("/meetings", body(), token=world.provider.token).body["attendee"]["AttendeeId"]
    patient = join(api, meeting_id, world.patient).body["attendee"]["AttendeeId"]
    staff = group(api, world, meeting_id, world.nurse, world.interpreter)
    # The interpreter's video was turned off before: mute-all must not turn it back on.
    api.patch(f"/meetings/{meeting_id}/participants/{world.interpreter.id}", {"video": "off"},
              token=world.provider.token)  # fmt: skip

    reply = api.post(f"/meetings/{meeting_id}/participants/mute-all", token=world.nurse.token)
    assert reply.status == 200 and reply.body["muted"] == 2  # the patient and the interpreter

    caps = {who: emulator.capabilities(meeting_id, a) for who, a in
            {"provider": provider_attendee, "patient": patient, "nurse": staff[world.nurse.id],
             "interpreter": staff[world.interpreter.id]}.items()}  # fmt: skip
    assert caps["patient"]["Audio"] == caps["interpreter"]["Audio"] == "Receive"
    assert caps["nurse"]["Audio"] == caps["provider"]["Audio"] == "SendReceive"  # the muter and the provider
    assert caps["interpreter"]["Video"] == "Receive"

    with psycopg.connect(clean_db, autocommit=True) as conn:
        late = add_user(conn, "fb-late", "provider", "Late Joiner")
    late_attendee = group(api, world, meeting_id, late)[late.id]
    assert emulator.capabilities(meeting_id, late_attendee)["Audio"] == "Receive"
    listed = participants(api, meeting_id, world.provider)
    assert listed[late.id]["allowed"]["audio"] == "off"
    assert listed[world.provider.id]["allowed"]["audio"] == "on"


def test_capability_calls_match_chimes_service_model():
    """botocore's Stubber validates every parameter against the chime-sdk-meetings model."""
    import boto3

    client = boto3.client("chime-sdk-meetings", region_name="eu-central-1")
    gateway = ChimeGateway(client, media_region="eu-central-1")
    meeting, attendee = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
    caps = {"Audio": "Receive", "Video": "Receive", "Content": "Receive"}
    with Stubber(client) as stub:
        stub.add_response("update_attendee_capabilities", {"Attendee": {"AttendeeId": attendee}},
                          {"MeetingId": meeting, "AttendeeId": attendee, "Capabilities": caps})  # fmt: skip
        stub.add_response("batch_update_attendee_capabilities_except", {},
                          {"MeetingId": meeting, "ExcludedAttendeeIds": [{"AttendeeId": attendee}],
                           "Capabilities": caps})  # fmt: skip
        stub.add_response("create_attendee", {"Attendee": {"AttendeeId": attendee, "ExternalUserId": "u_x1"}},
                          {"MeetingId": meeting, "ExternalUserId": "u_x1", "Capabilities": caps})  # fmt: skip
        gateway.update_capabilities(meeting, attendee, caps)
        gateway.update_capabilities_except(meeting, [attendee], caps)
        gateway.create_attendee(meeting, "u_x1", caps)
        stub.assert_no_pending_responses()


def test_the_emulator_refuses_content_without_video_like_chime(emulator: ChimeEmulator):
    from botocore.exceptions import ClientError

    meeting = emulator.create_meeting(ClientRequestToken="tok-1", ExternalMeetingId="appt_1",
                                      MediaRegion="eu-central-1")["Meeting"]  # fmt: skip
    with pytest.raises(ClientError) as refused:
        emulator.create_attendee(MeetingId=meeting["MeetingId"], ExternalUserId="u_abc",
                                 Capabilities={"Audio": "SendReceive", "Video": "None", "Content": "Receive"})  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "BadRequestException"


# --- hands and the participant list ----------------------------------------------------------------------
def test_any_participant_raises_and_lowers_a_hand(api: Api, world: World):
    meeting_id = start(api, world)
    join(api, meeting_id, world.patient)
    raised = api.post(f"/meetings/{meeting_id}/hand", token=world.patient.token)
    assert raised.status == 200 and raised.body["handRaised"] is True
    again = api.post(f"/meetings/{meeting_id}/hand", token=world.patient.token)
    assert again.body["handRaisedAt"] == raised.body["handRaisedAt"]  # raising twice keeps the first time
    assert participants(api, meeting_id, world.provider)[world.patient.id]["handRaised"] is True
    lowered = api.delete(f"/meetings/{meeting_id}/hand", token=world.patient.token)
    assert lowered.body == {"meetingId": meeting_id, "handRaised": False, "handRaisedAt": None}
    assert api.post(f"/meetings/{meeting_id}/hand", token=world.outsider.token).code == "meeting_not_found"


def test_the_participant_list_shows_role_presence_network_and_what_each_may_send(
    api: Api, world: World, emulator: ChimeEmulator
):
    meeting_id = start(api, world)
    attendee = join(api, meeting_id, world.patient).body["attendee"]["AttendeeId"]
    group(api, world, meeting_id, world.nurse)
    emulator.play(meeting_id, attendee, "joined", network_type="PSTN")
    BUS.deliver()
    listed = participants(api, meeting_id, world.patient)  # patients see the list too
    assert set(listed) == {world.provider.id, world.patient.id, world.nurse.id}
    me = listed[world.patient.id]
    assert (me["role"], me["isAppointmentPatient"], me["presence"], me["networkType"]) == (
        "patient", True, "joined", "PSTN")  # fmt: skip
    assert listed[world.nurse.id]["presence"] == "not_joined"
    assert me["allowed"] == {"audio": "on", "video": "on", "content": "on"}
    emulator.play(meeting_id, attendee, "left")
    BUS.deliver()
    assert participants(api, meeting_id, world.provider)[world.patient.id]["presence"] == "left"
    names = {world.provider.name, world.patient.name, world.nurse.name}
    assert not any(n in str(listed) for n in names)
    assert api.get(f"/meetings/{meeting_id}/participants", token=world.outsider.token).code == "meeting_not_found"


def test_join_still_costs_two_round_trips_with_the_waiting_room_and_stored_mute(
    api: Api, world: World, runtime: Runtime
):
    meeting_id = start(api, world, waitingRoom=True)
    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "admit"}, token=world.provider.token)
    api.patch(f"/meetings/{meeting_id}/participants/{world.patient.id}", {"audio": "off"}, token=world.provider.token)
    before = runtime.db.round_trips
    assert join(api, meeting_id, world.patient).status == 200
    assert runtime.db.round_trips - before == 2


# --- what a red-team pass found (each failed before its fix) ---------------------------------------------
def test_a_removed_staff_member_loses_every_control_and_cannot_readmit_herself(api: Api, world: World):
    meeting_id = start(api, world)
    join(api, meeting_id, world.patient)
    group(api, world, meeting_id, world.nurse)
    api.delete(f"/meetings/{meeting_id}/participants/{world.nurse.id}", token=world.provider.token)
    base = f"/meetings/{meeting_id}"
    for attempt in (
        api.get(f"{base}/lobby", token=world.nurse.token),
        api.patch(f"{base}/participants/{world.patient.id}", {"audio": "off"}, token=world.nurse.token),
        api.delete(f"{base}/participants/{world.patient.id}", token=world.nurse.token),
        api.post(f"{base}/lobby/{world.nurse.id}", {"decision": "admit"}, token=world.nurse.token),
        api.post(f"{base}/messages", {"clientMessageId": "n1", "text": "still here"}, token=world.nurse.token),
        api.get(base, token=world.nurse.token),
        join(api, meeting_id, world.nurse),
    ):
        assert (attempt.status, attempt.code) == (403, "participant_removed"), attempt.body
    # the provider admits her again: she is back, with her controls
    api.post(f"{base}/lobby/{world.nurse.id}", {"decision": "admit"}, token=world.provider.token)
    assert join(api, meeting_id, world.nurse).status == 200
    assert api.get(f"{base}/lobby", token=world.nurse.token).status == 200


def test_a_removed_or_denied_patient_cannot_chat_or_raise_a_hand(api: Api, world: World):
    meeting_id = start(api, world, waitingRoom=True)
    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "deny"}, token=world.provider.token)
    post = api.post(f"/meetings/{meeting_id}/messages", {"clientMessageId": "p1", "text": "hi"},
                    token=world.patient.token)  # fmt: skip
    assert (post.status, post.code) == (403, "admission_denied")
    assert api.post(f"/meetings/{meeting_id}/hand", token=world.patient.token).code == "admission_denied"


def test_a_poll_racing_a_decision_never_undoes_it(api: Api, world: World, runtime: Runtime, clean_db: str):
    """The poll read "waiting", the provider decided, then the poll's lobby statement ran."""
    from videocall.controls.repository import ControlsRepository
    from videocall.core.audit import AuditEntry

    meeting_id = start(api, world, waitingRoom=True)
    assert join(api, meeting_id, world.patient).status == 202
    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "deny"}, token=world.provider.token)
    late_poll = ControlsRepository(runtime.db).enter_lobby(
        appointment_id="appt_123", session_id=None, user_id=world.patient.id,
        audit=AuditEntry(world.patient.id, "lobby.wait", "appt_123", world.patient.id, meeting_id, None),
    )  # fmt: skip
    assert late_poll is False
    assert [r["state"] for r in query(clean_db, "SELECT state FROM lobby_entries")] == ["denied"]


def test_mute_all_on_a_meeting_chime_ended_is_410_not_500(api: Api, world: World, emulator: ChimeEmulator):
    meeting_id = start(api, world)
    join(api, meeting_id, world.patient)
    api.deliver_events = False  # Chime ended it; its MeetingEnded event has not arrived yet
    emulator.auto_end(meeting_id)
    reply = api.post(f"/meetings/{meeting_id}/participants/mute-all", token=world.provider.token)
    assert (reply.status, reply.code) == (410, "meeting_ended")


def test_batch_join_creates_each_attendee_with_what_is_stored_for_them(api: Api, world: World, emulator: ChimeEmulator):
    meeting_id = start(api, world)
    api.patch(f"/meetings/{meeting_id}/participants/{world.patient.id}", {"video": "off", "audio": "off"},
              token=world.provider.token)  # fmt: skip
    attendees = group(api, world, meeting_id, world.patient, world.nurse)
    assert emulator.capabilities(meeting_id, attendees[world.patient.id]) == {
        "Audio": "Receive", "Video": "Receive", "Content": "SendReceive"}  # fmt: skip
    assert emulator.capabilities(meeting_id, attendees[world.nurse.id])["Audio"] == "SendReceive"


def test_batch_join_refuses_a_denied_patient(api: Api, world: World):
    meeting_id = start(api, world, waitingRoom=True)
    assert join(api, meeting_id, world.patient).status == 202
    api.post(f"/meetings/{meeting_id}/lobby/{world.patient.id}", {"decision": "deny"}, token=world.provider.token)
    reply = api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.patient.id]},
                     token=world.provider.token)  # fmt: skip
    assert [e["code"] for e in reply.body["errors"]] == ["participant_denied"] and reply.body["attendees"] == []


def test_a_clinician_who_is_the_appointments_patient_is_not_its_clinical_controller(api: Api, world: World,
                                                                                  clean_db: str):  # fmt: skip
    from conftest import add_appointment

    with psycopg.connect(clean_db, autocommit=True) as conn:
        add_appointment(conn, "appt_staff", world.provider, world.nurse)  # the nurse is the patient here
    reply = api.post("/meetings", body(appointment_id="appt_staff"), token=world.provider.token)
    meeting_id = reply.body["meeting"]["MeetingId"]
    group(api, world, meeting_id, world.nurse)
    lobby = api.get(f"/meetings/{meeting_id}/lobby", token=world.nurse.token)
    assert (lobby.status, lobby.code) == (403, "not_a_clinical_controller")
