"""Proof under faults: the issue's list, one test (or one parametrized test) per item, named after its words.

- Database unavailable during create and join -> 503 with Retry-After, and no Chime meeting left behind.
  The database fails for real: a PostgreSQL of this module's own (`own_pg`, never the shared session
  server) is stopped with `pg_ctl stop` at the chosen statement, or the statement's backend is killed
  with `pg_terminate_backend`. Only "the reply of a committed statement is lost" needs a driver-level
  wrapper (the statement commits for real, then the connection is killed and the driver raises).
- Chime throttling and ServiceUnavailable -> retried, then 503 with Retry-After: the emulator's
  `fail_next`, and a real botocore client (the production client configuration) against a local
  HTTP endpoint, where botocore's own retry shows.
- Chime NotFound on join -> the documented 410 meeting_ended.
- A batch where Chime fails some users -> 200 with the successes and per-user errors.
- The database restarting between two invocations -> the next invocation reconnects.
- A Lambda timeout halfway through create -> the retry finishes the job.
- A log scan over all of it (the last test of this module) finds no ID token, JoinToken, name,
  transcript or message text.

Related tests elsewhere, not repeated here: tests/test_create_consistency.py (simultaneous creates, a
Chime outage at CreateMeeting / CreateAttendee, a stale row taken over, a broken connection replaced),
tests/test_meetings_api.py (the legacy join of an auto-ended meeting is 410), tests/test_chime_gateway.py
(the gateway's retry and chunking with Stubber).
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from conftest import TABLES, Api, Person, Reply, World, add_appointment, add_user, create_body, make_runtime, query
from psycopg import sql
from videocall.core.db import Database
from videocall.core.errors import ChimeUnavailable
from videocall.core.migrate import apply_migrations
from videocall.core.observability import logger
from videocall.core.settings import Settings
from videocall.local.chime_emulator import ChimeEmulator
from videocall.meetings.chime import ChimeGateway
from videocall.routes import ROUTES_BY_NAME
from videocall.runtime import Runtime, use_runtime

REST_CREATE = {k: v for k, v in create_body(enableRecording=False, enableTranscription=False).items() if k != "action"}
CLAIM = "INSERT INTO video_call_sessions"  # the claim of create (the one statement that inserts a session)
ACTIVATE = "SET status = 'active'"  # create's last statement: the meeting and the creator's attendee
RECORD_ATTENDEES = "jsonb_object_agg(x.u, x.a)"  # join's last statement: the new attendee
CHAT_INSERT = "INSERT INTO chat_messages"


# --- the log collector and the secrets the suite handled (the last test scans one with the other) -------
@dataclass
class Collected:
    stream: io.StringIO = field(default_factory=io.StringIO)
    secrets: set[str] = field(default_factory=set)  # ID tokens, JoinTokens
    texts: set[str] = field(default_factory=set)  # names, transcript and message text
    names: set[str] = field(default_factory=set)  # display names (also checked word by word)
    tests: set[str] = field(default_factory=set)  # which tests of this module ran (the scan says what it covers)


COLLECTED = Collected()


@pytest.fixture(scope="module", autouse=True)
def _module_logs() -> Iterator[None]:
    """Every record of the Powertools logger and of Python logging, for the whole module."""
    handler = logging.StreamHandler(COLLECTED.stream)
    handler.setFormatter(logger.registered_formatter)
    root = logging.getLogger()
    logger._logger.addHandler(handler)
    root.addHandler(handler)
    yield
    logger._logger.removeHandler(handler)
    root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _test_output(request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """And what each test printed (Powertools' JSON lines and EMF metrics go to stdout)."""
    yield
    out, err = capfd.readouterr()
    COLLECTED.stream.write(out + err)
    COLLECTED.tests.add(request.node.originalname)


def remember_world(world: World) -> None:
    for person in world.people:
        COLLECTED.secrets.add(person.token)
        COLLECTED.texts.add(person.name)
        COLLECTED.names.add(person.name)


def _join_tokens(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "JoinToken" and isinstance(item, str):
                yield item
            else:
                yield from _join_tokens(item)
    elif isinstance(value, list):
        for item in value:
            yield from _join_tokens(item)


class HarvestingApi(Api):
    """The conftest Api that remembers every JoinToken it is handed (for the log scan)."""

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Reply:
        reply = super().call(method, path, body, **kw)
        COLLECTED.secrets.update(_join_tokens(reply.body))
        return reply


def assert_503_with_retry_after(reply: Reply, code: str) -> None:
    assert (reply.status, reply.code) == (503, code), reply.body
    assert int(reply.headers["Retry-After"]) >= 1


def assert_every_meeting_has_its_live_row(emulator: ChimeEmulator, url: str) -> None:
    """No Chime meeting without a live row, no active row without its Chime meeting."""
    active = [r["meeting_id"] for r in query(url, "SELECT meeting_id FROM video_call_sessions WHERE status = 'active'")]
    for meeting_id in active:
        emulator.get_meeting(MeetingId=meeting_id)  # NotFound if the row's meeting is gone
    assert emulator.meeting_count == len(active)


# --- breaking the database at a chosen statement -----------------------------------------------------
def at_statement(monkeypatch: pytest.MonkeyPatch, db: Database, fragment: str, action: Callable[[], None]) -> list[str]:
    """Run `action` (stop the server, kill the backend) right before the first statement containing
    `fragment`; the statement then meets the real failure. Returns the statements it fired on."""
    fired: list[str] = []
    for name in ("fetch_one", "fetch_all", "execute"):
        original = getattr(db, name)

        def wrapper(statement: str, params: Any = None, *, _original: Callable[..., Any] = original) -> Any:
            if not fired and fragment in statement:
                fired.append(statement)
                action()
            return _original(statement, params)

        monkeypatch.setattr(db, name, wrapper)
    return fired


def kill_backend(db: Database, admin_url: str) -> None:
    """Terminate the server process behind `db`'s connection (what a failover or a proxy drop does)."""
    pid = db.connection().info.backend_pid
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                return
            admin.execute("SELECT pg_sleep(0.01)")
    raise AssertionError("backend still running")


def lose_the_reply(monkeypatch: pytest.MonkeyPatch, db: Database, admin_url: str, fragment: str) -> list[str]:
    """The statement containing `fragment` runs and commits; then the connection dies before the reply
    is read (the driver raises OperationalError, as it does when the server goes away mid-answer)."""
    fired: list[str] = []
    conn = db.connection()
    original = conn.execute

    def execute(statement: Any, params: Any = None, **kw: Any) -> Any:
        result = original(statement, params, **kw)
        if not fired and fragment in str(statement):
            fired.append(str(statement))
            kill_backend(db, admin_url)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(conn, "execute", execute)
    return fired


# --- a PostgreSQL of this module's own, to stop and restart -------------------------------------------
@dataclass
class OwnPostgres:
    server: Any
    admin_url: str
    url: str
    _socket_dir: str

    def _pg_ctl(self, *args: str) -> None:
        import pgserver

        pgserver.pg_ctl(["-w", *args], pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.server.log), "start")
        self._known()

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "-l", str(self.server.log), "restart")
        self._known()

    def _known(self) -> None:
        """pgserver stops the server it knows of at cleanup: tell it the new postmaster."""
        from pgserver.utils import PostmasterInfo

        self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.server.pgdata)

    def running(self) -> bool:
        try:
            psycopg.connect(self.admin_url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    try:
        import pgserver
    except ImportError:  # pragma: no cover - pgserver is a dev dependency
        pytest.skip("pgserver is not installed: no PostgreSQL of our own to stop and restart")
    # Not under pytest's basetemp: another pytest run on this machine may prune that while we run.
    server = pgserver.get_server(tempfile.mkdtemp(prefix="videocall-faults-pg-"), cleanup_mode="delete")
    admin_url = server.get_uri()
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("faults")))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname="faults")
    apply_migrations(url)
    own = OwnPostgres(server, admin_url, url, str(info["host"]))
    try:
        yield own
    finally:
        server.cleanup()


@dataclass
class OwnStack:
    pg: OwnPostgres
    runtime: Runtime
    api: HarvestingApi
    world: World
    emulator: ChimeEmulator

    @property
    def db(self) -> Database:
        return self.runtime.db


@pytest.fixture
def own(own_pg: OwnPostgres, emulator: ChimeEmulator) -> Iterator[OwnStack]:
    """The API on a runtime whose database is `own_pg` (clean, with the usual five people)."""
    if not own_pg.running():
        own_pg.start()
    with psycopg.connect(own_pg.url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")
        world = World(
            provider=add_user(conn, "fb-dr-lee", "provider", "Dr Avery Lee"),
            patient=add_user(conn, "fb-pat-kim", "patient", "Samantha Kimberly"),
            nurse=add_user(conn, "fb-nurse-ode", "provider", "Nurse Obioma Ode"),
            interpreter=add_user(conn, "fb-interp-ruiz", "provider", "Interpreter Ramona Ruiz"),
            outsider=add_user(conn, "fb-other", "patient", "Jolene Outsider"),
        )
        add_appointment(conn, world.appointment_id, world.provider, world.patient)
    remember_world(world)
    settings = Settings.from_env({**os.environ, "DATABASE_URL": own_pg.url})
    rt = make_runtime(settings, emulator)
    use_runtime(rt)
    try:
        yield OwnStack(own_pg, rt, HarvestingApi(), world, emulator)
    finally:
        use_runtime(None)
        rt.db.close()
        if not own_pg.running():
            own_pg.start()


@pytest.fixture
def hapi(runtime: Runtime, world: World) -> HarvestingApi:
    """The API on the shared test database (conftest's runtime), remembering what it handles."""
    remember_world(world)
    return HarvestingApi()


def create(api: Api, person: Person) -> Reply:
    return api.post("/meetings", REST_CREATE, token=person.token)


# === Database unavailable during create and join ======================================================
@pytest.mark.parametrize("down_at", ["the first statement", "the claim"])
def test_database_unavailable_during_create_before_the_claim_is_503_with_retry_after_and_no_meeting(
    own: OwnStack, monkeypatch: pytest.MonkeyPatch, down_at: str
):
    own.api.deliver_events = False
    if down_at == "the first statement":
        own.pg.stop()
    else:
        fired = at_statement(monkeypatch, own.db, CLAIM, own.pg.stop)

    reply = create(own.api, own.world.provider)

    assert_503_with_retry_after(reply, "database_unavailable")
    assert down_at == "the first statement" or fired
    assert own.runtime.chime.calls == 0 and own.emulator.meeting_count == 0 and not own.emulator.deleted
    # The database is back: nothing half made is in the way, the retry makes the one meeting.
    own.pg.start()
    monkeypatch.undo()
    assert query(own.pg.url, "SELECT 1 FROM video_call_sessions") == []
    again = create(own.api, own.world.provider)
    assert again.status == 201, again.body
    assert own.emulator.meeting_count == 1
    assert_every_meeting_has_its_live_row(own.emulator, own.pg.url)


def test_database_unavailable_during_create_after_create_meeting_takes_the_meeting_back(
    own: OwnStack, monkeypatch: pytest.MonkeyPatch
):
    """Down between CreateMeeting and the statement that activates the session: 503, the meeting deleted."""
    own.api.deliver_events = False
    fired = at_statement(monkeypatch, own.db, ACTIVATE, own.pg.stop)

    reply = create(own.api, own.world.provider)

    assert_503_with_retry_after(reply, "database_unavailable")
    assert fired and own.emulator.meeting_count == 0 and len(own.emulator.deleted) == 1
    own.pg.start()
    monkeypatch.undo()
    own.api.deliver_events = True
    again = create(own.api, own.world.patient)
    assert again.status in (200, 201), again.body
    assert again.body["meeting"]["MeetingId"] not in own.emulator.deleted
    assert own.emulator.meeting_count == 1
    assert_every_meeting_has_its_live_row(own.emulator, own.pg.url)


def test_database_unavailable_during_create_when_the_activate_reply_is_lost_keeps_the_meeting_with_its_row(
    own: OwnStack, monkeypatch: pytest.MonkeyPatch
):
    """The activate committed but its answer never came back: the row is active with the meeting, so
    the meeting must stay (deleting it would leave an active row without its meeting), and the retry
    hands back the same meeting and the same attendee."""
    own.api.deliver_events = False
    fired = lose_the_reply(monkeypatch, own.db, own.pg.admin_url, ACTIVATE)

    reply = create(own.api, own.world.provider)

    assert_503_with_retry_after(reply, "database_unavailable")
    assert fired
    assert_every_meeting_has_its_live_row(own.emulator, own.pg.url)
    (row,) = query(own.pg.url, "SELECT status, meeting_id FROM video_call_sessions")
    assert row["status"] == "active" and own.emulator.meeting_count == 1
    again = create(own.api, own.world.provider)
    assert again.status == 200 and again.body["meeting"]["MeetingId"] == row["meeting_id"]
    assert own.emulator.attendee_count(row["meeting_id"]) == 1


@pytest.mark.parametrize("down_at", ["the first statement", "recording the attendee"])
def test_database_unavailable_during_join_is_503_with_retry_after(
    own: OwnStack, monkeypatch: pytest.MonkeyPatch, down_at: str
):
    created = create(own.api, own.world.provider)
    meeting_id = created.body["meeting"]["MeetingId"]
    own.api.deliver_events = False
    if down_at == "the first statement":
        own.pg.stop()
    else:
        fired = at_statement(monkeypatch, own.db, RECORD_ATTENDEES, own.pg.stop)

    reply = own.api.post(f"/meetings/{meeting_id}/attendees", token=own.world.patient.token)

    assert_503_with_retry_after(reply, "database_unavailable")
    assert down_at == "the first statement" or fired
    own.pg.start()
    monkeypatch.undo()
    own.api.deliver_events = True
    again = own.api.post(f"/meetings/{meeting_id}/attendees", token=own.world.patient.token)
    assert again.status == 200 and again.body["meeting"]["MeetingId"] == meeting_id
    assert_every_meeting_has_its_live_row(own.emulator, own.pg.url)
    # A retry duplicates nothing: Chime holds the attendees the database knows, no orphan.
    recorded = query(own.pg.url, "SELECT attendee_id FROM meeting_attendees")
    assert own.emulator.attendee_count(meeting_id) == len(recorded) == 2


# === The database restarting between two invocations ===================================================
def test_the_database_restarting_between_two_invocations_the_next_invocation_reconnects(own: OwnStack):
    created = create(own.api, own.world.provider)
    assert created.status == 201
    before = own.db.connection().info.backend_pid

    own.pg.restart()

    joined = own.api.post(f"/meetings/{created.body['meeting']['MeetingId']}/attendees",
                          token=own.world.patient.token)  # fmt: skip
    assert joined.status == 200, joined.body
    assert own.db.connection().info.backend_pid != before


# === Chime throttling and ServiceUnavailable ===========================================================
@pytest.mark.parametrize("action", ["create", "join"])
def test_chime_throttling_is_retried_then_succeeds(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, runtime: Runtime, action: str
):
    """Four throttled attempts, the fifth works: the caller never notices."""
    meeting_id = create(hapi, world.provider).body["meeting"]["MeetingId"] if action == "join" else None
    operation = "CreateMeeting" if action == "create" else "CreateAttendee"
    emulator.fail_next[operation] = ["ThrottlingException"] * 4
    calls = runtime.chime.calls

    if meeting_id is None:
        reply = create(hapi, world.provider)
    else:
        reply = hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)

    assert reply.status in (200, 201), reply.body
    assert emulator.fail_next[operation] == []
    expected = 4 + (2 if action == "create" else 1)  # the throttled tries, then CreateMeeting+CreateAttendee
    assert runtime.chime.calls - calls == expected
    assert emulator.meeting_count == 1


@pytest.mark.parametrize("action", ["create", "join"])
def test_chime_throttling_that_persists_is_503_with_retry_after(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, runtime: Runtime, clean_db: str, action: str
):
    meeting_id = create(hapi, world.provider).body["meeting"]["MeetingId"] if action == "join" else None
    operation = "CreateMeeting" if action == "create" else "CreateAttendee"
    emulator.fail_next[operation] = ["ThrottlingException"] * 6
    calls = runtime.chime.calls

    if meeting_id is None:
        reply = create(hapi, world.provider)
    else:
        reply = hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)

    assert_503_with_retry_after(reply, "chime_unavailable")
    assert reply.headers["Retry-After"] == "2"  # Chime's own Retry-After (the emulator sends 2)
    assert len(emulator.fail_next[operation]) == 1  # five attempts made, the sixth failure never asked for
    assert runtime.chime.calls - calls == 5
    assert_every_meeting_has_its_live_row(emulator, clean_db)


def test_a_create_throttled_after_chime_made_its_meeting_retries_without_another_create_meeting(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, clean_db: str, monkeypatch: pytest.MonkeyPatch
):
    """Under Chime's rate limit, CreateAttendee can be throttled after CreateMeeting worked: the meeting is
    kept on the 'creating' row, so the retry spends its calls on the attendee, not on CreateMeeting again
    (in the rate-limit benchmark, 714 CreateMeeting calls were accepted for 200 meetings)."""
    made: list[str] = []
    real = emulator.create_meeting
    monkeypatch.setattr(emulator, "create_meeting", lambda **params: made.append("CreateMeeting") or real(**params))
    emulator.fail_next["CreateAttendee"] = ["ThrottlingException"] * 5

    first = create(hapi, world.provider)
    assert_503_with_retry_after(first, "chime_unavailable")
    (pending,) = query(clean_db, "SELECT status, pending_meeting->>'MeetingId' AS meeting FROM video_call_sessions")
    assert pending["status"] == "creating" and pending["meeting"]

    retried = create(hapi, world.provider)
    patient = create(hapi, world.patient)

    assert retried.status in (200, 201), retried.body
    assert retried.body["meeting"]["MeetingId"] == pending["meeting"] == patient.body["meeting"]["MeetingId"]
    assert made == ["CreateMeeting"] and emulator.meeting_count == 1
    (row,) = query(clean_db, "SELECT status, pending_meeting FROM video_call_sessions")
    assert row == {"status": "active", "pending_meeting": None}


@pytest.mark.parametrize("action", ["create", "join"])
def test_chime_service_unavailable_is_503_with_retry_after(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, clean_db: str, action: str
):
    """With the emulator (no SDK underneath) the gateway answers at once with Chime's Retry-After; the
    retry of ServiceUnavailable itself is the SDK's: see the real-client test below."""
    meeting_id = create(hapi, world.provider).body["meeting"]["MeetingId"] if action == "join" else None
    operation = "CreateMeeting" if action == "create" else "CreateAttendee"
    emulator.fail_next[operation] = ["ServiceUnavailableException"]

    if meeting_id is None:
        reply = create(hapi, world.provider)
    else:
        reply = hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)

    assert_503_with_retry_after(reply, "chime_unavailable")
    assert reply.headers["Retry-After"] == "2"
    assert_every_meeting_has_its_live_row(emulator, clean_db)
    again = create(hapi, world.provider) if meeting_id is None else hapi.post(
        f"/meetings/{meeting_id}/attendees", token=world.patient.token)  # fmt: skip
    assert again.status in (200, 201), again.body


class _ChimeEndpoint(BaseHTTPRequestHandler):
    """A local chime-sdk-meetings endpoint that answers every request with one error (rest-json)."""

    status = 503
    code = "ServiceUnavailableException"
    requests: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).requests.append(self.path)
        body = json.dumps({"Code": self.code, "Message": "emulated"}).encode()
        self.send_response(self.status)
        self.send_header("x-amzn-ErrorType", self.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "code", "attempts"),
    [(503, "ServiceUnavailableException", 2), (429, "ThrottlingException", 10)],
)
def test_chime_throttling_and_service_unavailable_with_the_production_client_are_retried_then_503(
    monkeypatch: pytest.MonkeyPatch, status: int, code: str, attempts: int
):
    """The boto3 client as the runtime builds it for AWS (standard retry mode, 2 attempts), against a
    local endpoint that keeps failing: botocore retries ServiceUnavailable once; throttling is retried
    by botocore (twice per call) and by the gateway (five calls); then 503 with Chime's Retry-After."""
    import boto3
    import botocore.retries.standard
    from videocall.runtime import _aws_client

    handler = type("Endpoint", (_ChimeEndpoint,), {"status": status, "code": code, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda *a, **kw: real_client(
        *a, endpoint_url=f"http://127.0.0.1:{server.server_address[1]}", **kw))  # fmt: skip
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    try:
        gateway = ChimeGateway(_aws_client("chime-sdk-meetings", "us-east-1"), media_region="eu-central-1",
                               sleep=lambda _seconds: None)  # fmt: skip
        with pytest.raises(ChimeUnavailable) as caught:
            gateway.create_meeting(client_request_token="appt_123-g1", external_meeting_id="appt_123")
    finally:
        server.shutdown()
        server.server_close()

    assert len(handler.requests) == attempts and all(p == "/meetings" for p in handler.requests)
    assert caught.value.status == 503 and caught.value.retry_after == 7


# === Chime NotFound on join -> the documented 410 =====================================================
def test_chime_not_found_on_join_is_the_documented_410(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, clean_db: str
):
    """Chime auto-ended the meeting (nobody connected for 5 minutes): the batch that finds out, a rejoin
    and a first join all answer 410 meeting_ended, with no Retry-After (retrying will not help)."""
    meeting_id = create(hapi, world.provider).body["meeting"]["MeetingId"]
    assert hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token).status == 200
    emulator.auto_end(meeting_id)
    hapi.deliver_events = False  # Chime's MeetingEnded event is late: the API finds out first

    batch = hapi.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]},
                      token=world.provider.token)  # fmt: skip
    rejoin = hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)
    legacy = hapi.legacy({"action": "join", "meetingId": meeting_id}, token=world.provider.token)

    for reply in (batch, rejoin, legacy):
        assert (reply.status, reply.code) == (410, "meeting_ended"), reply.body
        assert "Retry-After" not in reply.headers
    (row,) = query(clean_db, "SELECT status, ended_at FROM video_call_sessions")
    assert row["status"] == "ended" and row["ended_at"] is not None
    assert emulator.meeting_count == 0


# === A batch where Chime fails some users -> partial success reported ==================================
def test_a_batch_where_chime_fails_some_users_reports_partial_success(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, clean_db: str
):
    """Chime's 250-attendee limit is reached in the middle of the batch: two of three are added."""
    meeting_id = create(hapi, world.provider).body["meeting"]["MeetingId"]
    for i in range(247):  # the provider holds one: 248 in the meeting, room for two more
        emulator.create_attendee(MeetingId=meeting_id, ExternalUserId=f"filler{i:03d}")
    wanted = [world.nurse.id, world.interpreter.id, world.outsider.id]

    reply = hapi.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": wanted}, token=world.provider.token)

    assert reply.status == 200, reply.body
    added = {a["userId"] for a in reply.body["attendees"]}
    assert len(added) == 2 and added < set(wanted)
    assert all(a["attendee"]["JoinToken"] for a in reply.body["attendees"])
    (error,) = reply.body["errors"]
    assert error["userId"] in set(wanted) - added and error["code"] == "attendee_not_added"
    assert "Attendee limit exceeded" not in error["message"]  # Chime's own message is never passed on
    rows = query(clean_db, "SELECT user_id::text FROM meeting_attendees WHERE added_by IS NOT NULL")
    assert {r["user_id"] for r in rows} == added
    assert emulator.attendee_count(meeting_id) == 250


# === A Lambda timeout halfway through create -> the retry finishes the job ==============================
class LambdaTimeout(BaseException):
    """The function killed mid-request: no except clause of ours runs, nothing is cleaned up."""


@pytest.mark.parametrize("retry", ["at once", "after STALE_CREATE_SECONDS"])
def test_a_lambda_timeout_halfway_through_create_the_retry_finishes_the_job(
    hapi: HarvestingApi, world: World, emulator: ChimeEmulator, runtime: Runtime, settings: Settings,
    clean_db: str, monkeypatch: pytest.MonkeyPatch, retry: str,
):  # fmt: skip
    """Killed after CreateMeeting and CreateAttendee, before the session is activated. The retry (a new
    execution environment) reuses the abandoned meeting through its ClientRequestToken: right away as
    the follower of the 'creating' row, or, once the row is stale, as the next generation taking it
    over. Either way one Chime meeting, in use by the one active row."""
    hapi.deliver_events = False

    def killed(**_kwargs: Any) -> bool:
        raise LambdaTimeout()

    monkeypatch.setattr(runtime.sessions, "activate_session", killed)
    with pytest.raises(LambdaTimeout):
        create(hapi, world.provider)
    assert emulator.meeting_count == 1  # the abandoned meeting
    (abandoned,) = query(clean_db, "SELECT status FROM video_call_sessions")
    assert abandoned["status"] == "creating"

    stale = 0 if retry == "after STALE_CREATE_SECONDS" else settings.stale_create_seconds
    fresh = make_runtime(dataclasses.replace(settings, stale_create_seconds=stale), emulator)
    use_runtime(fresh)
    try:
        again = create(hapi, world.provider)
        hapi.deliver_events = True
        joined = hapi.post(f"/meetings/{again.body['meeting']['MeetingId']}/attendees", token=world.patient.token)
    finally:
        use_runtime(runtime)
        fresh.db.close()

    assert again.status in (200, 201), again.body
    assert joined.status == 200
    assert emulator.meeting_count == 1 and not emulator.deleted
    assert_every_meeting_has_its_live_row(emulator, clean_db)
    rows = query(clean_db, "SELECT status, meeting_id FROM video_call_sessions ORDER BY generation")
    expected = ["active"] if retry == "at once" else ["failed", "active"]
    assert [r["status"] for r in rows] == expected
    assert rows[-1]["meeting_id"] == again.body["meeting"]["MeetingId"]


# === Chat and a transcript during faults (their text is what the log scan looks for) ==================
def test_a_chat_message_and_a_transcript_during_database_faults(
    hapi: HarvestingApi, world: World, runtime: Runtime, clean_db: str, monkeypatch: pytest.MonkeyPatch
):
    if "post_message" not in ROUTES_BY_NAME:
        pytest.skip("the chat routes (POST /meetings/{id}/messages) are not there yet")
    grant = {"recording": "granted", "transcription": "granted", "aiProcessing": "granted"}
    assert hapi.put("/appointments/appt_123/consent", grant, token=world.patient.token).status == 200
    body = {**REST_CREATE, "enableTranscription": True, "transcriptionLanguage": "en-US"}
    meeting_id = hapi.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    text = "My left ankle has been swollen since the Vancouver trip " + uuid.uuid4().hex[:8]
    COLLECTED.texts.add(text)
    message = {"clientMessageId": "c-fault-1", "text": text}

    # The connection dies at the message's insert: 503, and the retry stores it once.
    fired = at_statement(monkeypatch, runtime.db, CHAT_INSERT, lambda: kill_backend(runtime.db, clean_db))
    failed = hapi.post(f"/meetings/{meeting_id}/messages", message, token=world.patient.token)
    assert_503_with_retry_after(failed, "database_unavailable")
    assert fired
    monkeypatch.undo()
    stored = hapi.post(f"/meetings/{meeting_id}/messages", message, token=world.patient.token)
    assert stored.status in (200, 201), stored.body
    assert [m["text"] for m in query(clean_db, "SELECT text FROM chat_messages")] == [text]

    # The call, then its transcript by speaker.
    hapi.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)
    hapi.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    transcript = hapi.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token)
    assert transcript.status == 200 and transcript.body["segments"], transcript.body
    COLLECTED.texts.update(s["text"] for s in transcript.body["segments"])


# === The log scan over all of it (keep this test last in the module) ===================================
def test_a_log_scan_over_all_of_it_finds_no_id_token_join_token_name_transcript_or_message_text(
    capfd: pytest.CaptureFixture[str],
):
    out, err = capfd.readouterr()
    logs = COLLECTED.stream.getvalue() + out + err
    if not COLLECTED.tests - {
        "test_a_log_scan_over_all_of_it_finds_no_id_token_join_token_name_transcript_or_message_text"
    }:
        pytest.skip("run with the rest of tests/test_faults.py: the scan covers what the fault tests logged")

    assert COLLECTED.secrets and COLLECTED.texts
    # The faults were logged (what this scan covers), as JSON with their codes.
    assert "database operational error" in logs or "request failed upstream" in logs
    for secret in COLLECTED.secrets:
        assert secret not in logs
        assert secret[len(secret) // 2 : len(secret) // 2 + 24] not in logs  # a token's inner part leaks too
    for text in COLLECTED.texts:
        assert text not in logs, text
        assert text[len(text) // 3 : len(text) // 3 + 16] not in logs, text  # a quoted part of it
    for name in COLLECTED.names:
        for part in name.split():
            if len(part) > 3:
                assert part not in logs, part
