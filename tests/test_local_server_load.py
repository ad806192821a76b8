"""`videocall serve` under load, over real HTTP: many apps at once get answers (not resets), the same
meeting for the same appointment, a half-sent request blocks no one, and what the server refuses by
itself (an undeclared method, oversized headers) comes back in the API's JSON error shape.

No timing is asserted here: speed lives in benchmarks/http_load.py."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import LocalAws, World, make_runtime, query
from videocall.core.settings import Settings
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.pipelines_emulator import MediaPipelinesEmulator
from videocall.local.server import LocalServer, check_connection_budget, make_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def serve(settings: Settings, emulator: ChimeEmulator, pipelines: MediaPipelinesEmulator, aws: LocalAws):
    """Start servers with per-worker runtimes (each its own database connection), as `videocall serve` does."""
    started: list[tuple[LocalServer, threading.Thread]] = []

    def start(threads: int = 8) -> LocalServer:
        server = make_server(0, threads=threads,
                             runtime_factory=lambda: make_runtime(settings, emulator, pipelines, aws.s3))  # fmt: skip
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(serve) -> LocalServer:
    return serve()


def call(server: LocalServer, method: str, path: str, token: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None, conn: http.client.HTTPConnection | None = None,
         ) -> tuple[int, Any, http.client.HTTPResponse]:  # fmt: skip
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    sent = {**(headers or {}), **({"x-firebase-token": token} if token else {})}
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None, response
    finally:
        if own:
            conn.close()


def test_fifty_apps_creating_the_same_meeting_at_once_all_get_it(
    server: LocalServer, world: World, emulator: ChimeEmulator, clean_db: str
):
    """50 clients released together: 50 answers (no reset, no 5xx), one meeting, one of them created it."""
    callers = 50
    barrier = threading.Barrier(callers)
    people = [world.provider, world.patient]

    def create(i: int) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
        conn.connect()
        barrier.wait()
        status, body, _ = call(server, "POST", "/meetings", people[i % 2].token, {"appointmentId": "appt_123"},
                               conn=conn)  # fmt: skip
        conn.close()
        return status, body

    with ThreadPoolExecutor(callers) as pool:
        answers = list(pool.map(create, range(callers)))

    assert len(answers) == callers
    assert {status for status, _ in answers} <= {200, 201}
    assert [status for status, _ in answers].count(201) == 1
    assert len({body["meeting"]["MeetingId"] for _, body in answers}) == 1
    assert emulator.meeting_count == 1
    assert len(query(clean_db, "SELECT 1 FROM video_call_sessions")) == 1
    # Two people asked, twice each at most: one attendee each.
    assert len(query(clean_db, "SELECT 1 FROM meeting_attendees")) == 2
    assert server.environments.started > 1  # served side by side, each worker with its own runtime


def test_twenty_clients_reading_a_meeting_for_seconds_get_no_errors(server: LocalServer, world: World):
    status, created, _ = call(server, "POST", "/meetings", world.provider.token, {"appointmentId": "appt_123"})
    assert status == 201
    meeting_id = created["meeting"]["MeetingId"]
    assert call(server, "POST", f"/meetings/{meeting_id}/attendees", world.patient.token)[0] == 200
    deadline = time.monotonic() + 3

    def read(i: int) -> tuple[int, list[Any]]:
        person = (world.provider, world.patient)[i % 2]
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
        done, failures = 0, list[Any]()
        while time.monotonic() < deadline:
            try:
                status, body, _ = call(server, "GET", f"/meetings/{meeting_id}", person.token, conn=conn)
                if status != 200 or body["meetingId"] != meeting_id:
                    failures.append(status)
            except (OSError, http.client.HTTPException) as exc:
                failures.append(type(exc).__name__)
                conn.close()
            done += 1
        conn.close()
        return done, failures

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(read, range(20)))

    assert [f for _, fs in results for f in fs] == []
    assert all(done > 0 for done, _ in results)


def test_a_half_sent_request_blocks_no_one(serve, world: World):
    """Even with a single worker: waitress holds the half-sent requests, the worker serves the others."""
    server = serve(threads=1)
    port = server.server_address[1]
    half_body = socket.create_connection(("127.0.0.1", port))
    half_body.sendall(b"POST /meetings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 200\r\n\r\n{\"appointmentId\": ")  # fmt: skip
    half_headers = socket.create_connection(("127.0.0.1", port))
    half_headers.sendall(b"GET /meetings/11111111-2222-3333-4444-555555555555 HTTP/1.1\r\nHost: x\r\nx-fire")
    try:
        status, body, _ = call(server, "POST", "/meetings", world.provider.token, {"appointmentId": "appt_123"})
        assert status == 201 and body["meeting"]["MeetingId"]
        again, _, _ = call(server, "GET", f"/meetings/{body['meeting']['MeetingId']}", world.patient.token)
        assert again == 200
    finally:
        half_body.close()
        half_headers.close()


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT_ME"])
def test_a_method_no_route_declares_answers_405_in_json(server: LocalServer, world: World, method: str):
    status, body, response = call(server, method, "/meetings", world.provider.token)
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed" and body["error"]["message"]
    assert response.getheader("Content-Type") == "application/json"
    assert set(response.getheader("Allow", "").split(", ")) >= {"GET", "POST", "DELETE"}


def test_a_declared_method_on_a_path_without_it_is_the_lambda_entry_s_answer(server: LocalServer, world: World):
    status, body, _ = call(server, "PUT", "/meetings", world.provider.token)
    assert status == 404 and body["error"]["code"] == "route_not_found"


def test_oversized_headers_answer_431_in_json(server: LocalServer, world: World):
    status, body, response = call(server, "GET", "/meetings/11111111-2222-3333-4444-555555555555",
                                  world.provider.token, headers={"x-padding": "a" * 64 * 1024})  # fmt: skip
    assert status == 431
    assert body == {"error": {"code": "headers_too_large", "message": body["error"]["message"]}}
    assert "a" * 16 not in body["error"]["message"]  # nothing of the request is echoed
    assert response.getheader("Content-Type") == "application/json"
    # The server goes on serving.
    assert call(server, "GET", "/meetings/11111111-2222-3333-4444-555555555555", world.provider.token)[0] == 404


def test_headers_within_api_gateway_s_limit_are_served(server: LocalServer, world: World):
    status, _, _ = call(server, "GET", "/meetings/11111111-2222-3333-4444-555555555555",
                        world.provider.token, headers={"x-padding": "a" * 8 * 1024})  # fmt: skip
    assert status == 404  # past the header check, answered by the route: no such meeting


def test_a_body_over_api_gateway_s_limit_answers_413_in_json(server: LocalServer, world: World):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.putrequest("POST", "/meetings")
    conn.putheader("x-firebase-token", world.provider.token)
    conn.putheader("Content-Length", str(11 * 1024 * 1024))
    conn.endheaders()  # the length alone is refused: the body is never read
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "body_too_large"
    conn.close()


def test_the_server_refuses_to_start_with_more_workers_than_connections(clean_db: str):
    with psycopg.connect(clean_db) as conn:
        (limit,) = conn.execute("SELECT current_setting('max_connections')::int").fetchone() or (0,)
    check_connection_budget(clean_db, 8)
    with pytest.raises(SystemExit, match="max_connections"):
        check_connection_budget(clean_db, limit)


@pytest.fixture
def serve_process() -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """`videocall serve` as a developer runs it: its own embedded PostgreSQL in a fresh data dir
    (outside pytest's base directory, which another pytest run may close to other users)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="videocall-serve-"))
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["VIDEOCALL_DATA_DIR"] = str(tmp_path)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "videocall.cli", "serve", "--port", "0", "--s3-port", "0", "--threads", "4"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 120
    port = None
    while port is None and time.monotonic() < deadline and process.poll() is None:
        port = next((int(json.loads(ln)["listening"].rsplit(":", 1)[1]) for ln in list(lines) if '"listening"' in ln),
                    None)  # fmt: skip
        time.sleep(0.1)
    assert port is not None, "".join(lines)[-4000:]
    try:
        yield process, port, tmp_path / "pgdata"
    finally:
        if process.poll() is None:  # the test failed before its SIGTERM: still stop its PostgreSQL
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_sigterm_stops_serve_and_its_postgres(serve_process: tuple[subprocess.Popen[str], int, Path]):
    process, port, pgdata = serve_process
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("TRACE", "/meetings")
    assert conn.getresponse().status == 405
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/meetings/11111111-2222-3333-4444-555555555555")
    assert conn.getresponse().status == 401  # through the Lambda entry: no token
    conn.close()
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 0
    assert not (pgdata / "postmaster.pid").exists()
    assert not _running(postmaster)


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent (a container's init may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
