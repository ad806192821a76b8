"""Bad input gets a clear 4xx with {"error": {"code", "message"}}: never a 500, a stack trace, or an echo."""

from __future__ import annotations

import json
import uuid

import pytest
from conftest import Api, World, add_user, create_body, query
from videocall.local.chime_emulator import ChimeEmulator

MEETING = "11111111-2222-3333-4444-555555555555"


def assert_error(reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert set(reply.body) == {"error"}
    assert reply.body["error"]["code"] == code
    assert isinstance(reply.body["error"]["message"], str) and reply.body["error"]["message"]
    assert "Traceback" not in json.dumps(reply.body)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"action": "create", "appointmentId": ', "malformed_json"),
        ("not json at all", "malformed_json"),
        ('{"action": "teleport", "meetingId": "x"}', "unknown_action"),
        ('{"meetingId": "x"}', "unknown_action"),
        ("[]", "invalid_request"),
        ('"create"', "invalid_request"),
        ("null", "invalid_request"),
        ('{"action": "create"}', "invalid_request"),
        ('{"action": "create", "appointmentId": 123}', "invalid_request"),
        ('{"action": "create", "appointmentId": "appt_123", "enableRecording": "yes"}', "invalid_request"),
        ('{"action": "create", "appointmentId": "appt 123; drop table"}', "invalid_request"),
        ('{"action": "join"}', "invalid_request"),
        ('{"action": "join", "meetingId": "not-a-guid"}', "invalid_request"),
        ('{"action": "end", "meetingId": 42}', "invalid_request"),
        ('{"action": "batch-join", "meetingId": "' + MEETING + '", "userIds": "u1"}', "invalid_request"),
        ('{"action": "batch-join", "meetingId": "' + MEETING + '", "userIds": []}', "invalid_request"),
        ('{"action": "batch-join", "meetingId": "' + MEETING + '", "userIds": ["a", "a"]}', "invalid_request"),
        ('{"action": "batch-join", "meetingId": "' + MEETING + '", "userIds": [1, 2]}', "invalid_request"),
    ],
)
def test_legacy_endpoint_rejects_bad_bodies(api: Api, world: World, raw: str, code: str):
    assert_error(api.legacy(None, raw=raw, token=world.provider.token), 400, code)


def test_more_than_250_user_ids_is_400(api: Api, world: World):
    body = {"action": "batch-join", "meetingId": MEETING, "userIds": [str(uuid.uuid4()) for _ in range(251)]}
    reply = api.legacy(body, token=world.provider.token)
    assert_error(reply, 400, "invalid_request")
    assert "userIds" in reply.body["error"]["message"]


def test_huge_body_is_413_before_parsing(api: Api, world: World):
    raw = json.dumps(create_body(padding="x" * 200_000))
    assert_error(api.legacy(None, raw=raw, token=world.provider.token), 413, "body_too_large")


def test_errors_do_not_echo_what_was_sent(api: Api, world: World):
    secret = "Patient Jane Doe, DOB 1970-01-01"
    reply = api.legacy({"action": "create", "appointmentId": secret}, token=world.provider.token)
    assert reply.status == 400 and secret not in json.dumps(reply.body)


def test_rest_routes_reject_bad_input(api: Api, world: World):
    assert_error(api.post("/meetings", {"appointmentId": 5}, token=world.provider.token), 400, "invalid_request")
    assert_error(api.post("/meetings/nope/attendees", token=world.provider.token), 400, "invalid_request")
    assert_error(api.get("/meetings/nope", token=world.provider.token), 400, "invalid_request")
    assert_error(api.call("PUT", "/meetings", {}, token=world.provider.token), 404, "route_not_found")
    assert_error(api.get("/nowhere", token=world.provider.token), 404, "route_not_found")


def test_bad_input_writes_nothing(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    api.legacy(create_body(transcriptionLanguage="es-ES"), token=world.provider.token)
    api.legacy({"action": "create", "appointmentId": "appt_123", "enableRecording": "yes"}, token=world.provider.token)
    assert emulator.meeting_count == 0
    assert query(clean_db, "SELECT count(*) AS n FROM video_call_sessions")[0]["n"] == 0


def test_content_type_is_not_required_to_be_json(api: Api, world: World):
    """The old endpoint read the body as JSON whatever the header said (curl -d sends form encoding)."""
    reply = api.call(
        "POST", "/chime-meeting-token", create_body(), token=world.provider.token,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert reply.status == 200


def test_inputs_a_red_team_found_are_4xx_not_500(api: Api, world: World, clean_db: str):
    import psycopg

    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin-bad", "admin", "Admin")
    replies = {
        "before beyond bigint": api.get(f"/admin/patients/{world.patient.id}/audit-trail?before=9223372036854775808",
                                        token=admin.token),
        "patientId of dashes": api.post("/admin/erasures", {"patientId": "-" * 36}, token=admin.token),
        "patientId of hex": api.post("/admin/erasures", {"patientId": "a" * 36}, token=admin.token),
        "NUL in a reference": api.put("/admin/appointments/appt_123/legal-hold", {"reference": "case\u0000x"},
                                      token=admin.token),
        "nested 5000 deep": api.post("/chime-meeting-token", raw="[" * 5000 + "]" * 5000, token=world.provider.token),
        "nested object": api.put("/appointments/appt_123/consent", raw='{"a":' * 3000 + "1" + "}" * 3000,
                                 token=world.patient.token),
    }  # fmt: skip
    for name, reply in replies.items():
        assert 400 <= reply.status < 500, (name, reply.status, reply.body)
        assert reply.code and "error" in reply.body, name


def test_without_a_token_the_answer_is_401_before_any_body_is_read(api: Api):
    """The order is fixed: no token -> 401, then 413, then 400 (a body is never parsed for nobody)."""
    nested = api.post("/meetings", raw="[" * 2000 + "]" * 2000)
    huge = api.post("/meetings", raw="x" * 70_000)
    legacy = api.post("/chime-meeting-token", raw="{" * 3000)
    assert [(r.status, r.code) for r in (nested, huge, legacy)] == [(401, "token_missing")] * 3


def test_an_unsupported_language_is_not_echoed(api: Api, world: World):
    reply = api.legacy(create_body(transcriptionLanguage="zz-<script>"), token=world.provider.token)
    assert reply.code == "unsupported_transcription_language" and "zz-" not in reply.body["error"]["message"]


def test_a_lone_surrogate_in_a_string_is_a_400_not_a_500(api: Api, world: World):
    """JSON can spell "\\ud800"; UTF-8 (the database, the logs) cannot hold it."""
    body = {k: v for k, v in create_body(enableRecording=False, enableTranscription=False).items() if k != "action"}
    meeting_id = api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    reply = api.call("POST", f"/meetings/{meeting_id}/messages", token=world.patient.token,
                     raw='{"clientMessageId":"s1","text":"hi \\ud800 there"}')  # fmt: skip
    assert (reply.status, reply.code) == (400, "invalid_request")
