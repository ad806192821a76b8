"""The old system's checklist and the issue's rules, end to end: API Gateway event -> Lambda entry
point -> domain -> PostgreSQL and the Chime emulator."""

from __future__ import annotations

import uuid

from conftest import BUS, Api, World, create_body, query
from videocall.local.chime_emulator import ChimeEmulator
from videocall.runtime import Runtime

# What amazon-chime-sdk-js MeetingSessionConfiguration(meeting, attendee) reads.
MEETING_KEYS = {"MeetingId", "ExternalMeetingId", "MediaPlacement"}
PLACEMENT_KEYS = {"AudioHostUrl", "SignalingUrl", "TurnControlUrl", "EventIngestionUrl"}
ATTENDEE_KEYS = {"AttendeeId", "ExternalUserId", "JoinToken"}


def assert_joinable(body: dict) -> None:
    assert body["meeting"].keys() >= MEETING_KEYS
    assert body["meeting"]["MediaPlacement"].keys() >= PLACEMENT_KEYS
    assert all(body["meeting"]["MediaPlacement"][k].startswith(("wss://", "https://", "")) for k in PLACEMENT_KEYS)
    assert body["attendee"].keys() >= ATTENDEE_KEYS
    assert body["attendee"]["JoinToken"]


def test_create_returns_meeting_and_attendee_in_the_old_shape(api: Api, world: World, emulator: ChimeEmulator):
    reply = api.legacy(create_body(), token=world.provider.token)

    assert reply.status == 200
    assert list(reply.body) == ["meeting", "attendee", "recordingEnabled", "transcriptionEnabled"]
    assert_joinable(reply.body)
    assert reply.body["recordingEnabled"] is True and reply.body["transcriptionEnabled"] is True
    assert reply.body["meeting"]["ExternalMeetingId"] == "appt_123"
    assert reply.body["meeting"]["MediaRegion"] == "eu-central-1"
    # Opaque ExternalUserId: neither the name nor the Firebase uid.
    assert reply.body["attendee"]["ExternalUserId"] == "u_" + uuid.UUID(world.provider.id).hex
    assert emulator.meeting_count == 1


def test_rest_create_is_201_then_200_for_the_live_meeting(api: Api, world: World, emulator: ChimeEmulator):
    body = {k: v for k, v in create_body().items() if k != "action"}
    first = api.post("/meetings", body, token=world.provider.token)
    again = api.post("/meetings", body, token=world.patient.token)

    assert (first.status, again.status) == (201, 200)
    assert first.body["meeting"]["MeetingId"] == again.body["meeting"]["MeetingId"]
    assert first.body["attendee"]["AttendeeId"] != again.body["attendee"]["AttendeeId"]
    assert emulator.meeting_count == 1


def test_second_user_joins_the_same_meeting(api: Api, world: World, emulator: ChimeEmulator):
    created = api.legacy(create_body(), token=world.provider.token).body
    meeting_id = created["meeting"]["MeetingId"]

    joined = api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token)

    assert joined.status == 200
    assert list(joined.body) == ["meeting", "attendee"]
    assert_joinable(joined.body)
    assert joined.body["meeting"]["MeetingId"] == meeting_id
    assert joined.body["meeting"]["MediaPlacement"] == created["meeting"]["MediaPlacement"]
    assert joined.body["attendee"]["AttendeeId"] != created["attendee"]["AttendeeId"]
    assert emulator.attendee_count(meeting_id) == 2


def test_session_row_is_written_without_join_tokens(api: Api, world: World, clean_db: str):
    created = api.legacy(create_body(), token=world.provider.token).body
    joined = api.legacy(
        {"action": "join", "meetingId": created["meeting"]["MeetingId"]}, token=world.patient.token
    ).body

    (row,) = query(clean_db, "SELECT *, row_to_json(s)::text AS whole FROM video_call_sessions s")
    assert row["status"] == "active"
    assert row["meeting_id"] == created["meeting"]["MeetingId"]
    assert row["external_meeting_id"] == "appt_123"
    assert row["media_region"] == "eu-central-1"
    assert row["media_placement"]["SignalingUrl"] == created["meeting"]["MediaPlacement"]["SignalingUrl"]
    assert (row["recording_enabled"], row["transcription_enabled"], row["transcription_language"]) == (
        True, True, "en-US",
    )  # fmt: skip
    assert str(row["created_by"]) == world.provider.id
    assert row["attendee_tokens"] == {
        world.provider.id: created["attendee"]["AttendeeId"],
        world.patient.id: joined["attendee"]["AttendeeId"],
    }
    for secret in (created["attendee"]["JoinToken"], joined["attendee"]["JoinToken"]):
        assert secret not in row["whole"]
    attendees = query(clean_db, "SELECT user_id::text, attendee_id FROM meeting_attendees ORDER BY created_at")
    assert [a["user_id"] for a in attendees] == [world.provider.id, world.patient.id]


def test_end_sets_ended_at_and_ended_by_and_deletes_the_chime_meeting(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]

    ended = api.legacy({"action": "end", "meetingId": meeting_id}, token=world.provider.token)

    assert ended.status == 200
    assert ended.body["ended"] is True and ended.body["alreadyEnded"] is False
    (row,) = query(clean_db, "SELECT status, ended_at, ended_by::text FROM video_call_sessions")
    assert row["status"] == "ended" and row["ended_at"] is not None and row["ended_by"] == world.provider.id
    assert emulator.meeting_count == 0 and meeting_id in emulator.deleted
    # Ending again is a harmless retry; joining now says the meeting is over.
    again = api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    assert again.status == 200 and again.body["alreadyEnded"] is True
    late = api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)
    assert (late.status, late.code) == (410, "meeting_ended")


def test_batch_join_adds_three_users_and_reports_unknown_ones(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    unknown = str(uuid.uuid4())
    user_ids = [world.nurse.id, world.interpreter.id, world.outsider.id, unknown, "not-a-user"]

    reply = api.legacy(
        {"action": "batch-join", "meetingId": meeting_id, "userIds": user_ids}, token=world.provider.token
    )

    assert reply.status == 200
    added = {a["userId"]: a for a in reply.body["attendees"]}
    assert set(added) == {world.nurse.id, world.interpreter.id, world.outsider.id}
    assert all(a["attendee"]["JoinToken"] and not a["alreadyAdded"] for a in added.values())
    assert {(e["userId"], e["code"]) for e in reply.body["errors"]} == {
        (unknown, "user_not_found"), ("not-a-user", "user_not_found"),
    }  # fmt: skip
    assert emulator.attendee_count(meeting_id) == 4
    rows = query(clean_db, "SELECT user_id::text, added_by::text FROM meeting_attendees WHERE added_by IS NOT NULL")
    assert {r["user_id"] for r in rows} == set(added) and {r["added_by"] for r in rows} == {world.provider.id}

    # Added users may now join, and get the attendee made for them (no second one).
    joined = api.post(f"/meetings/{meeting_id}/attendees", token=world.interpreter.token)
    assert joined.status == 200
    assert joined.body["attendee"]["AttendeeId"] == added[world.interpreter.id]["attendee"]["AttendeeId"]
    # Retrying the batch adds nobody twice.
    retry = api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": user_ids[:3]}, token=world.provider.token)
    assert retry.status == 200 and all(a["alreadyAdded"] for a in retry.body["attendees"])
    assert emulator.attendee_count(meeting_id) == 4


def test_nonexistent_meeting_is_404(api: Api, world: World):
    missing = str(uuid.uuid4())
    for reply in (
        api.legacy({"action": "join", "meetingId": missing}, token=world.provider.token),
        api.get(f"/meetings/{missing}", token=world.provider.token),
        api.delete(f"/meetings/{missing}", token=world.provider.token),
    ):
        assert (reply.status, reply.code) == (404, "meeting_not_found")


def test_non_participant_is_403_and_cannot_tell_a_meeting_exists(api: Api, world: World):
    # Creating for someone else's appointment: 403, the same answer as for an appointment that does not exist.
    theirs = api.legacy(create_body(), token=world.outsider.token)
    nowhere = api.legacy(create_body("appt_does_not_exist"), token=world.outsider.token)
    assert (theirs.status, theirs.code) == (403, "not_a_participant")
    assert (nowhere.status, nowhere.body) == (theirs.status, theirs.body)

    # A meeting the caller is not part of answers exactly like one that does not exist.
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    existing = api.legacy({"action": "join", "meetingId": meeting_id}, token=world.outsider.token)
    missing = api.legacy({"action": "join", "meetingId": str(uuid.uuid4())}, token=world.outsider.token)
    assert (existing.status, existing.body) == (missing.status, missing.body) == (404, missing.body)
    peek = api.get(f"/meetings/{meeting_id}", token=world.outsider.token)
    assert peek.status == 404


def test_patient_ending_is_403_even_as_creator(api: Api, world: World, emulator: ChimeEmulator):
    meeting_id = api.legacy(create_body(), token=world.patient.token).body["meeting"]["MeetingId"]

    reply = api.legacy({"action": "end", "meetingId": meeting_id}, token=world.patient.token)

    assert (reply.status, reply.code) == (403, "not_allowed_to_end")
    assert emulator.meeting_count == 1


def test_only_provider_or_creator_adds_attendees(api: Api, world: World):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    reply = api.post(
        f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.patient.token
    )
    assert (reply.status, reply.code) == (403, "not_allowed_to_add_attendees")


def test_create_needs_video_enabled_and_an_open_appointment(api: Api, world: World, clean_db: str):
    import psycopg
    from conftest import add_appointment

    with psycopg.connect(clean_db, autocommit=True) as conn:
        add_appointment(conn, "appt_novideo", world.provider, world.patient, video=False)
        add_appointment(conn, "appt_done", world.provider, world.patient, status="completed")
    novideo = api.legacy(create_body("appt_novideo"), token=world.provider.token)
    done = api.legacy(create_body("appt_done"), token=world.provider.token)
    assert (novideo.status, novideo.code) == (403, "video_not_enabled")
    assert (done.status, done.code) == (409, "appointment_not_open")


def test_view_state_for_participants(api: Api, world: World):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token)

    state = api.get(f"/meetings/{meeting_id}", token=world.patient.token)

    assert state.status == 200
    assert state.body["status"] == "active" and state.body["appointmentId"] == "appt_123"
    assert [a["userId"] for a in state.body["attendees"]] == [world.provider.id, world.patient.id]
    assert "JoinToken" not in str(state.body)


def test_retries_never_duplicate_meetings_or_attendees(api: Api, world: World, emulator: ChimeEmulator):
    first = api.legacy(create_body(), token=world.provider.token).body
    retry = api.legacy(create_body(), token=world.provider.token).body
    rejoin = api.legacy({"action": "join", "meetingId": first["meeting"]["MeetingId"]}, token=world.provider.token).body

    assert first["meeting"]["MeetingId"] == retry["meeting"]["MeetingId"] == rejoin["meeting"]["MeetingId"]
    assert first["attendee"]["AttendeeId"] == retry["attendee"]["AttendeeId"] == rejoin["attendee"]["AttendeeId"]
    assert emulator.meeting_count == 1 and emulator.attendee_count(first["meeting"]["MeetingId"]) == 1


def test_auto_ended_meeting_join_is_410_and_create_makes_the_next_one(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    old = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    emulator.auto_end(old)  # Chime: 5 minutes with nobody connected

    join = api.legacy({"action": "join", "meetingId": old}, token=world.patient.token)
    assert (join.status, join.code) == (410, "meeting_ended")
    (row,) = query(clean_db, "SELECT status, ended_at FROM video_call_sessions")
    assert row["status"] == "ended" and row["ended_at"] is not None

    again = api.legacy(create_body(), token=world.patient.token)
    assert again.status == 200 and again.body["meeting"]["MeetingId"] != old
    rows = query(
        clean_db, "SELECT generation, status, client_request_token FROM video_call_sessions ORDER BY generation"
    )
    assert [(r["generation"], r["status"]) for r in rows] == [(1, "ended"), (2, "active")]
    assert rows[0]["client_request_token"] != rows[1]["client_request_token"]


def test_auto_ended_meeting_found_by_create_is_replaced(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    old = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    emulator.auto_end(old)

    again = api.legacy(create_body(), token=world.patient.token)

    assert again.status == 200 and again.body["meeting"]["MeetingId"] != old
    statuses = [r["status"] for r in query(clean_db, "SELECT status FROM video_call_sessions ORDER BY generation")]
    assert statuses == ["ended", "active"]


def test_unsupported_transcription_language_lists_the_supported_ones(api: Api, world: World, emulator: ChimeEmulator):
    reply = api.legacy(create_body(transcriptionLanguage="es-ES"), token=world.provider.token)

    assert (reply.status, reply.code) == (400, "unsupported_transcription_language")
    assert "es-US" in reply.body["error"]["details"]["supportedLanguages"]
    assert "es-ES" not in reply.body["error"]["details"]["supportedLanguages"]
    assert emulator.meeting_count == 0


def test_audit_trail_records_who_touched_which_patients_call(api: Api, world: World, clean_db: str):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token)
    api.legacy({"action": "join", "meetingId": meeting_id}, token=world.outsider.token)
    api.get(f"/meetings/{meeting_id}", token=world.patient.token)
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.patient.token)
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.provider.token)

    events = query(
        clean_db,
        "SELECT actor_user_id::text AS actor, action, outcome, patient_id::text AS patient, meeting_id, request_id"
        " FROM audit_events ORDER BY id",
    )
    trail = [(e["actor"], e["action"], e["outcome"]) for e in events if e["actor"]]
    assert trail == [
        (world.provider.id, "meeting.create", "allowed"),
        (world.provider.id, "meeting.join", "allowed"),
        (world.provider.id, "recording.start", "denied"),  # enableRecording, no consent yet: waiting
        (world.provider.id, "transcription.start", "denied"),  # enableTranscription, likewise
        (world.patient.id, "meeting.join", "allowed"),
        (world.outsider.id, "meeting.join", "denied"),
        (world.patient.id, "meeting.view", "allowed"),
        (world.patient.id, "meeting.end", "denied"),
        (world.provider.id, "meeting.end", "allowed"),
    ]
    allowed = [e for e in events if e["outcome"] == "allowed"]
    assert all(e["patient"] == world.patient.id and e["request_id"] for e in allowed)
    assert all(e["meeting_id"] == meeting_id for e in events[1:] if e["actor"])


def test_audit_trail_is_append_only(api: Api, world: World, clean_db: str):
    import psycopg
    import pytest

    api.legacy(create_body(), token=world.provider.token)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("UPDATE audit_events SET outcome = 'denied'")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM audit_events")


def test_each_action_stays_within_three_database_round_trips(api: Api, world: World, runtime: Runtime):
    api.deliver_events = False  # count the request alone; Chime's events are handled by other functions

    def trips(call) -> tuple[int, int]:
        before_db, before_chime = runtime.db.round_trips, runtime.chime.calls
        reply = call()
        assert reply.status < 300, reply.body
        counted = runtime.db.round_trips - before_db, runtime.chime.calls - before_chime
        BUS.deliver()
        return counted

    plain = {"enableRecording": False, "enableTranscription": False}
    create = trips(lambda: api.legacy(create_body(**plain), token=world.provider.token))
    meeting_id = query(runtime.settings.database_url, "SELECT meeting_id FROM video_call_sessions")[0]["meeting_id"]
    create_live = trips(lambda: api.legacy(create_body(**plain), token=world.patient.token))
    batch = trips(lambda: api.post(
        f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id, world.interpreter.id]},
        token=world.provider.token,
    ))  # fmt: skip
    join = trips(lambda: api.post(f"/meetings/{meeting_id}/attendees", token=world.nurse.token))
    view = trips(lambda: api.get(f"/meetings/{meeting_id}", token=world.patient.token))
    end = trips(lambda: api.delete(f"/meetings/{meeting_id}", token=world.provider.token))

    # (database round trips, Chime calls)
    assert create == (3, 2)  # context, claim, activate | CreateMeeting, CreateAttendee
    assert create_live == (2, 1)  # context, record | CreateAttendee
    assert batch == (3, 1)  # context, users, record | BatchCreateAttendee
    assert join == (2, 1)  # context, audit | GetAttendee (the attendee the batch made)
    assert view == (2, 0)  # context with attendees, audit
    assert end == (2, 1)  # context, end | DeleteMeeting


def test_recording_on_create_costs_one_round_trip_more_or_two_with_consent(
    api: Api, world: World, runtime: Runtime, clean_db: str
):
    """What enableRecording adds to create: the consent-checking claim (+1); with consent, activating the
    recording (+1) and the two pipeline calls (capture, concatenation)."""

    api.deliver_events = False

    def trips(call) -> tuple[int, int, int]:
        before = runtime.db.round_trips, runtime.chime.calls, runtime.pipelines.caller.calls
        reply = call()
        assert reply.status < 300, reply.body
        counted = (runtime.db.round_trips - before[0], runtime.chime.calls - before[1],
                   runtime.pipelines.caller.calls - before[2])  # fmt: skip
        BUS.deliver()
        return counted

    body = {k: v for k, v in create_body(enableTranscription=False).items() if k != "action"}
    waiting = trips(lambda: api.post("/meetings", body, token=world.provider.token))
    meeting_id = query(clean_db, "SELECT meeting_id FROM video_call_sessions")[0]["meeting_id"]
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    api.put("/appointments/appt_123/consent", {"recording": "granted", "transcription": "granted",
                                               "aiProcessing": "refused"}, token=world.patient.token)  # fmt: skip
    recording = trips(lambda: api.post("/meetings", body, token=world.provider.token))

    assert waiting == (4, 2, 0)  # context, claim, activate, consent claim | CreateMeeting, CreateAttendee
    assert recording == (5, 2, 2)  # ... claim, activate recording | ... | capture, concatenation


def test_rejoin_when_chime_withholds_the_join_token_replaces_the_attendee(
    api: Api, world: World, emulator: ChimeEmulator, monkeypatch
):
    """Whether GetAttendee returns the JoinToken is unconfirmed: without it, a new attendee replaces the old."""
    first = api.legacy(create_body(), token=world.provider.token).body
    meeting_id = first["meeting"]["MeetingId"]
    original = emulator.get_attendee

    def without_token(**params):
        response = original(**params)
        response["Attendee"].pop("JoinToken")
        return response

    monkeypatch.setattr(emulator, "get_attendee", without_token)

    again = api.legacy({"action": "join", "meetingId": meeting_id}, token=world.provider.token).body

    assert again["attendee"]["JoinToken"] and again["attendee"]["AttendeeId"] != first["attendee"]["AttendeeId"]
    assert emulator.attendee_count(meeting_id) == 1  # the old one was deleted: no slot leaks toward 250


def test_batch_join_by_an_outsider_answers_like_a_missing_meeting(api: Api, world: World):
    """No existence oracle: an outsider's batch-join on a real meeting and on a missing one answer alike."""
    meeting_id = api.legacy(create_body(enableTranscription=False), token=world.provider.token).body["meeting"][
        "MeetingId"]  # fmt: skip
    real = api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]},
                    token=world.outsider.token)  # fmt: skip
    missing = api.post(f"/meetings/{uuid.uuid4()}/attendees/batch", {"userIds": [world.nurse.id]},
                       token=world.outsider.token)  # fmt: skip
    assert (real.status, real.code) == (missing.status, missing.code) == (404, "meeting_not_found")


def test_ending_a_meeting_chime_already_ended_keeps_who_and_when(api: Api, world: World, clean_db: str):
    from handlers.chime_meeting_events import handler as meeting_events
    from videocall.local.server import LambdaContextStub

    meeting_id = api.legacy(create_body(enableTranscription=False), token=world.provider.token).body["meeting"][
        "MeetingId"]  # fmt: skip
    ended_event = {"version": "0", "id": "ended-1", "detail-type": "Chime Meeting State Change", "source": "aws.chime",
                   "account": "1", "time": "t", "region": "eu-central-1", "resources": [],
                   "detail": {"eventType": "chime:MeetingEnded", "timestamp": 1767607200000, "meetingId": meeting_id}}  # fmt: skip
    meeting_events(ended_event, LambdaContextStub())

    reply = api.delete(f"/meetings/{meeting_id}", token=world.provider.token)

    assert reply.status == 200 and reply.body["alreadyEnded"] is True
    (row,) = query(clean_db, "SELECT ended_by, ended_at FROM video_call_sessions")
    assert row["ended_by"] is None and row["ended_at"].timestamp() == 1767607200


def test_a_user_added_to_one_meeting_is_not_already_added_in_another(api: Api, world: World, clean_db: str):
    import psycopg
    from conftest import add_appointment

    with psycopg.connect(clean_db, autocommit=True) as conn:
        add_appointment(conn, "appt_456", world.provider, world.outsider)
    first = api.legacy(create_body(enableTranscription=False), token=world.provider.token).body["meeting"]["MeetingId"]
    second = api.legacy(create_body("appt_456", enableTranscription=False), token=world.provider.token).body[
        "meeting"]["MeetingId"]  # fmt: skip
    api.post(f"/meetings/{first}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)

    reply = api.post(f"/meetings/{second}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)

    assert reply.status == 200 and reply.body["attendees"][0]["alreadyAdded"] is False
    assert reply.body["attendees"][0]["attendee"].get("JoinToken")


def test_the_old_contract_still_takes_any_language_while_transcription_is_off(api: Api, world: World):
    """The old app sends a transcriptionLanguage with every create (its example: es-ES); only a
    transcription that would use it is refused."""
    reply = api.legacy(create_body(transcriptionLanguage="es-ES", enableTranscription=False, enableRecording=False),
                       token=world.provider.token)  # fmt: skip
    assert reply.status == 200, reply.body
