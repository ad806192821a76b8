"""The local stack as a developer uses it: `videocall serve` over real HTTP, the seed and token
commands, the committed OpenAPI document, and one Lambda function per route."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, Api, World, create_body
from videocall import cli
from videocall.local.devtools import emulator_id_token
from videocall.local.server import LambdaContextStub, make_server, rest_event
from videocall.routes import ROUTES
from videocall.runtime import Runtime

SEED_FILE = Path(__file__).resolve().parents[1] / "dev" / "seed.json"


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    httpd = make_server(0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def http(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("x-firebase-token", token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_readme_flow_over_http(server: str, capsys: pytest.CaptureFixture[str], monkeypatch, clean_db: str):
    """seed -> create -> join -> batch-join -> end, as the README's curl walk-through does it."""
    monkeypatch.setenv("DATABASE_URL", clean_db)
    assert cli.main(["dev", "seed", str(SEED_FILE)]) == 0
    people = {p["key"]: p for p in json.loads(capsys.readouterr().out)}
    dr, pat = people["dr_lee"], people["pat_kim"]

    status, created = http(server, "POST", "/chime-meeting-token", dr["token"], create_body())
    assert status == 200 and created["attendee"]["JoinToken"]
    meeting_id = created["meeting"]["MeetingId"]
    status, joined = http(
        server, "POST", "/chime-meeting-token", pat["token"], {"action": "join", "meetingId": meeting_id}
    )
    assert status == 200 and joined["meeting"]["MeetingId"] == meeting_id
    status, batch = http(server, "POST", "/chime-meeting-token", dr["token"], {
        "action": "batch-join", "meetingId": meeting_id,
        "userIds": [people["nurse_ode"]["id"], people["interp_ruiz"]["id"], people["pat_other"]["id"]],
    })  # fmt: skip
    assert status == 200 and len(batch["attendees"]) == 3 and batch["errors"] == []
    status, state = http(server, "GET", f"/meetings/{meeting_id}", pat["token"])
    assert status == 200 and len(state["attendees"]) == 5
    status, refused = http(
        server, "POST", "/chime-meeting-token", pat["token"], {"action": "end", "meetingId": meeting_id}
    )
    assert status == 403 and refused["error"]["code"] == "not_allowed_to_end"
    status, ended = http(server, "DELETE", f"/meetings/{meeting_id}", dr["token"])
    assert status == 200 and ended["ended"] is True
    status, missing = http(server, "POST", "/chime-meeting-token", None, {"action": "end", "meetingId": meeting_id})
    assert status == 401 and missing["error"]["code"] == "token_missing"


def test_seeding_twice_is_idempotent(capsys: pytest.CaptureFixture[str], monkeypatch, clean_db: str):
    monkeypatch.setenv("DATABASE_URL", clean_db)
    cli.main(["dev", "seed", str(SEED_FILE)])
    first = json.loads(capsys.readouterr().out)
    cli.main(["dev", "seed", str(SEED_FILE)])
    second = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in first] == [p["id"] for p in second]
    assert {p["role"] for p in first} == {"provider", "patient", "admin"}


def test_dev_token_is_accepted_by_the_api(api: Api, world: World, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["dev", "token", world.provider.firebase_uid]) == 0
    token = capsys.readouterr().out.strip()
    assert api.legacy(create_body(), token=token).status == 200


def test_committed_openapi_document_is_current():
    assert cli.OPENAPI_FILE.read_text() == cli.openapi_document(), "run `videocall openapi` and commit openapi.json"
    document = json.loads(cli.OPENAPI_FILE.read_text())
    for route in ROUTES:
        assert route.method.lower() in document["paths"][route.path], route.name


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_each_route_has_its_own_lambda_handler_that_serves_only_it(route, runtime: Runtime):
    module = import_module(route.module)
    other = next(r for r in ROUTES if r.path != route.path)
    path = other.path.replace("{meetingId}", "11111111-2222-3333-4444-555555555555")
    # A genuine token (its user need not exist: no route is reached to look them up) passes the token gate.
    with_token = {"x-firebase-token": emulator_id_token("anyone", PROJECT)}
    result = module.handler(rest_event(other.method, path, with_token, None), LambdaContextStub())
    assert result["statusCode"] == 404 and json.loads(result["body"])["error"]["code"] == "route_not_found"
    own = route.path.replace("{meetingId}", "11111111-2222-3333-4444-555555555555")
    result = module.handler(rest_event(route.method, own, {}, "{}"), LambdaContextStub())
    assert result["statusCode"] in (400, 401)  # reached its endpoint: validation or authentication


def test_create_through_its_own_function(runtime: Runtime, world: World):
    from handlers.create_meeting import handler

    event = rest_event("POST", "/meetings", {"x-firebase-token": world.provider.token},
                       json.dumps({"appointmentId": "appt_123"}))  # fmt: skip
    result = handler(event, LambdaContextStub())
    assert result["statusCode"] == 201 and json.loads(result["body"])["attendee"]["JoinToken"]


@pytest.fixture
def local_s3() -> Iterator[str]:
    from videocall.local.s3 import start_local_s3

    moto_server, endpoint = start_local_s3()
    yield endpoint
    moto_server.stop()


def test_the_recording_flow_over_http_with_a_download_curl_can_fetch(
    server: str, local_s3: str, runtime: Runtime, world: World, clean_db: str, capsys, monkeypatch
):
    """consent -> create with recording -> join -> attendee joined/left -> end -> GET .../recording ->
    download the file from the presigned link with a plain HTTP client (as curl does)."""
    from videocall.local.s3 import s3_client
    from videocall.local.stack import BUS

    monkeypatch.setitem(runtime.__dict__, "recordings_store", type(runtime.recordings_store)(
        s3_client(local_s3), runtime.recordings_store.bucket, link_seconds=900))  # fmt: skip
    runtime.__dict__.pop("recordings", None)
    runtime.__dict__.pop("privacy", None)
    port = server.rsplit(":", 1)[1]
    consent = {"recording": "granted", "transcription": "granted", "aiProcessing": "refused"}

    assert http(server, "PUT", "/appointments/appt_123/consent", world.patient.token, consent)[0] == 200
    body = {k: v for k, v in create_body().items() if k != "action"}
    status, created = http(server, "POST", "/meetings", world.provider.token, body)
    assert status == 201 and created["recording"]["state"] == "on"
    meeting_id = created["meeting"]["MeetingId"]
    assert http(server, "POST", f"/meetings/{meeting_id}/attendees", world.patient.token)[0] == 200
    capsys.readouterr()
    assert cli.main(["dev", "attendee", meeting_id, world.patient.id, "joined", "--port", port]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "eventType" in line]
    assert printed[0]["eventType"] == "chime:AttendeeJoined"
    assert cli.main(["dev", "attendee", meeting_id, world.patient.id, "left", "--port", port]) == 0
    status, state = http(server, "GET", f"/meetings/{meeting_id}", world.patient.token)
    assert state["recordingState"] == "on"
    assert http(server, "DELETE", f"/meetings/{meeting_id}", world.provider.token)[0] == 200
    BUS.deliver()

    status, page = http(server, "GET", f"/meetings/{meeting_id}/recording", world.provider.token)

    assert status == 200 and page["recordings"][0]["state"] == "completed"
    audio = next(a for a in page["recordings"][0]["artifacts"] if a["kind"] == "audio")
    assert audio["downloadUrl"].startswith(local_s3 + "/")
    with urllib.request.urlopen(audio["downloadUrl"], timeout=10) as download:
        content = download.read()
        disposition = download.headers["Content-Disposition"]
    assert len(content) == audio["sizeBytes"] > 0
    assert disposition == f'attachment; filename="{meeting_id}-r1-audio.mp4"'


def test_seeding_appointments_for_users_seeded_from_an_earlier_file(
    capsys: pytest.CaptureFixture[str], monkeypatch, clean_db: str, tmp_path: Path
):
    monkeypatch.setenv("DATABASE_URL", clean_db)
    assert cli.main(["dev", "seed", str(SEED_FILE)]) == 0
    later = tmp_path / "later.json"
    later.write_text(json.dumps({"appointments": [
        {"id": "appt_later", "provider": "dev-dr-lee", "patient": "dev-pat-kim", "scheduled_at": "2026-12-01T10:00:00Z"}]}))  # fmt: skip
    capsys.readouterr()
    assert cli.main(["dev", "seed", str(later)]) == 0
    from conftest import query

    assert query(clean_db, "SELECT id FROM appointments WHERE id = 'appt_later'") == [{"id": "appt_later"}]


def test_the_waiting_room_end_to_end_over_http(server: str, runtime: Runtime, world: World):
    """The provider opens a consultation with a waiting room; the patient's app waits (202, Retry-After,
    no JoinToken) and the provider's phone is told; the provider admits; the patient's next call joins
    and the patient's phone is told; the old contract answers 409 waiting_room."""
    from videocall.local.push import LocalPushSender

    pushes = runtime.push_sender
    assert isinstance(pushes, LocalPushSender)
    http(server, "PUT", "/devices/provider-phone-installation-1", world.provider.token,
         {"fcmToken": "fcm-provider-0123456789", "platform": "ios"})  # fmt: skip
    http(server, "PUT", "/devices/patient-phone-installation-01", world.patient.token,
         {"fcmToken": "fcm-patient-0123456789", "platform": "android"})  # fmt: skip
    status, created = http(server, "POST", "/meetings", world.provider.token,
                           {"appointmentId": "appt_123", "waitingRoom": True})  # fmt: skip
    assert status == 201
    meeting_id = created["meeting"]["MeetingId"]

    request = urllib.request.Request(f"{server}/meetings/{meeting_id}/attendees", data=b"", method="POST")
    request.add_header("Authorization", f"Bearer {world.patient.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202 and response.headers["Retry-After"] == "5"
        waiting = json.loads(response.read())
    assert waiting["status"] == "waiting" and "attendee" not in waiting
    assert [p.kind for p in pushes.to(world.provider.id)] == ["patient_waiting"]

    status, old = http(server, "POST", "/chime-meeting-token", world.patient.token,
                       {"action": "join", "meetingId": meeting_id})  # fmt: skip
    assert (status, old["error"]["code"]) == (409, "waiting_room")

    status, lobby = http(server, "GET", f"/meetings/{meeting_id}/lobby", world.provider.token)
    assert status == 200 and [w["userId"] for w in lobby["waiting"]] == [world.patient.id]
    status, _ = http(server, "POST", f"/meetings/{meeting_id}/lobby/{world.patient.id}", world.provider.token,
                     {"decision": "admit"})  # fmt: skip
    assert status == 200
    assert "admitted" in [p.kind for p in pushes.to(world.patient.id)]
    status, joined = http(server, "POST", f"/meetings/{meeting_id}/attendees", world.patient.token)
    assert status == 200 and joined["attendee"]["JoinToken"]
