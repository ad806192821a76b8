"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL), the Chime emulator, and an API client
that sends API Gateway REST proxy events through the same Lambda entry point AWS calls."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Before any videocall import: settings and Powertools read these.
os.environ.update(
    {
        "STAGE": "test",
        "FIREBASE_PROJECT_ID": "videocall-test",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
        "CHIME_BACKEND": "emulator",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "POWERTOOLS_SERVICE_NAME": "videocall",
        "POWERTOOLS_METRICS_NAMESPACE": "Telehealth/VideoCall",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
)

import psycopg
import pytest
from moto import mock_aws
from psycopg import sql
from videocall.core.db import Database
from videocall.core.migrate import apply_migrations
from videocall.core.settings import Settings
from videocall.http import build_resolver, make_lambda_handler
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.devtools import emulator_id_token
from videocall.local.pipelines_emulator import MediaPipelinesEmulator
from videocall.local.s3 import ensure_attachments_bucket, ensure_recordings_bucket, kms_client, s3_client
from videocall.local.server import LambdaContextStub, rest_event
from videocall.local.stack import BUS, wire
from videocall.runtime import Runtime, build_runtime, use_runtime

PROJECT = "videocall-test"
TABLES = (
    "audit_events, meeting_attendees, video_call_sessions, appointments, users, appointment_consents, recordings, "
    "recording_artifacts, chime_events_seen, attendee_presence, session_presence, legal_holds, "
    "appointment_call_settings, lobby_entries, participant_controls, session_controls, call_feedback, "
    "chat_conversations, chat_messages, chat_attachments, chat_reactions, chat_read_receipts, "
    "push_devices, call_rings"
)
BUCKET = "videocall-test-recordings"
ATTACHMENTS_BUCKET = "videocall-test-attachments"
SINK_ROLE = "arn:aws:iam::111122223333:role/videocall-test-pipeline-sink"


def _server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _server_url(tmp_path_factory)


def _with_dbname(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture
def fresh_database(server_url: str) -> Iterator[str]:
    """An empty database of its own (never touches what DATABASE_URL points at)."""
    name = f"videocall_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_dbname(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name = f"videocall_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_dbname(server_url, name)
    apply_migrations(url)
    try:
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def captured(capfd: pytest.CaptureFixture[str]) -> Iterator[io.StringIO]:
    """Every log record in Powertools' JSON format (wherever its own handler's stream points), plus what
    reached stdout/stderr by the end of the test: what the log scans read for tokens and patient data."""
    from videocall.core.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)
    out, err = capfd.readouterr()
    stream.write(out + err)


@pytest.fixture
def clean_db(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")
    return database_url


@dataclass
class LocalAws:
    """moto's S3 and KMS in process, with the recordings bucket (versioned, SSE-KMS) made."""

    s3: Any
    kms: Any
    key_arn: str
    attachments_key_arn: str = ""

    def objects(self, prefix: str = "") -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]

    def versions(self, prefix: str = "") -> int:
        page = self.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
        return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with mock_aws():
        s3, kms = s3_client(None), kms_client(None)
        yield LocalAws(s3, kms, ensure_recordings_bucket(s3, kms, BUCKET),
                       ensure_attachments_bucket(s3, kms, ATTACHMENTS_BUCKET))  # fmt: skip


@pytest.fixture
def settings(clean_db: str, aws: LocalAws) -> Settings:
    return Settings.from_env({
        **os.environ, "DATABASE_URL": clean_db, "RECORDINGS_BUCKET": BUCKET,
        "RECORDINGS_KMS_KEY_ARN": aws.key_arn, "PIPELINE_SINK_ROLE_ARN": SINK_ROLE,
        "ATTACHMENTS_BUCKET": ATTACHMENTS_BUCKET, "ATTACHMENTS_KMS_KEY_ARN": aws.attachments_key_arn,
    })  # fmt: skip


@pytest.fixture
def emulator() -> ChimeEmulator:
    BUS.clear()
    return ChimeEmulator(emit=BUS.emit)


@pytest.fixture
def pipelines(aws: LocalAws, emulator: ChimeEmulator) -> MediaPipelinesEmulator:
    emulated = MediaPipelinesEmulator(s3_client=aws.s3, emit=BUS.emit)
    wire(emulator, emulated, aws.s3)
    return emulated


def make_runtime(
    settings: Settings, emulator: ChimeEmulator, pipelines: MediaPipelinesEmulator | None = None, s3: Any = None
) -> Runtime:
    rt = build_runtime(settings, chime_client=emulator, pipelines_client=pipelines, s3_client=s3)
    rt.chime.caller.sleep = lambda _seconds: None  # throttling backoff without waiting
    if pipelines is not None:
        rt.pipelines.caller.sleep = lambda _seconds: None
    return rt


@pytest.fixture
def runtime(
    settings: Settings, emulator: ChimeEmulator, pipelines: MediaPipelinesEmulator, aws: LocalAws
) -> Iterator[Runtime]:
    rt = make_runtime(settings, emulator, pipelines, aws.s3)
    use_runtime(rt)
    yield rt
    use_runtime(None)
    rt.db.close()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


class Api:
    """Calls the API the way API Gateway does: a REST proxy event into the Lambda entry point."""

    def __init__(self) -> None:
        self._handler = make_lambda_handler(build_resolver())
        # Off: events wait in BUS until BUS.deliver() (tests that count one request's round trips).
        self.deliver_events = True

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = None, raw: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:  # fmt: skip
        h = {"content-type": "application/json", **(headers or {})}
        if token is not None:
            h["x-firebase-token"] = token
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        path, _, query_string = path.partition("?")
        result = self._handler(rest_event(method, path, h, payload, query_string), LambdaContextStub())  # type: ignore[arg-type]
        if self.deliver_events:
            BUS.deliver()  # Chime's events caused by this request reach their handlers, as EventBridge delivers them
        headers_out = {k: v[0] for k, v in (result.get("multiValueHeaders") or {}).items()}
        headers_out.update(result.get("headers") or {})
        text = result.get("body") or ""
        return Reply(result["statusCode"], json.loads(text) if text else None, headers_out)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def legacy(self, body: Any, **kw: Any) -> Reply:
        return self.call("POST", "/chime-meeting-token", body, **kw)


@pytest.fixture
def api(runtime: Runtime) -> Api:
    return Api()


@dataclass
class Person:
    id: str
    firebase_uid: str
    role: str
    name: str
    token: str


@dataclass
class World:
    provider: Person
    patient: Person
    nurse: Person
    interpreter: Person
    outsider: Person
    appointment_id: str = "appt_123"

    @property
    def people(self) -> list[Person]:
        return [self.provider, self.patient, self.nurse, self.interpreter, self.outsider]


def add_user(conn: psycopg.Connection[Any], uid: str, role: str, name: str) -> Person:
    row = conn.execute(
        "INSERT INTO users (firebase_uid, role, display_name) VALUES (%s, %s, %s) RETURNING id::text",
        (uid, role, name),
    ).fetchone()
    assert row is not None
    return Person(row[0], uid, role, name, emulator_id_token(uid, PROJECT))


def add_appointment(
    conn: psycopg.Connection[Any], appointment_id: str, provider: Person, patient: Person,
    *, video: bool = True, status: str = "scheduled",
) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO appointments (id, provider_id, patient_id, video_enabled, scheduled_at, status)"
        " VALUES (%s, %s, %s, %s, now(), %s)",
        (appointment_id, provider.id, patient.id, video, status),
    )


@pytest.fixture
def world(clean_db: str) -> World:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        w = World(
            provider=add_user(conn, "fb-dr-lee", "provider", "Dr Avery Lee"),
            patient=add_user(conn, "fb-pat-kim", "patient", "Samantha Kimberly"),
            nurse=add_user(conn, "fb-nurse-ode", "provider", "Nurse Obioma Ode"),
            interpreter=add_user(conn, "fb-interp-ruiz", "provider", "Interpreter Ramona Ruiz"),
            outsider=add_user(conn, "fb-other", "patient", "Jolene Outsider"),
        )
        add_appointment(conn, w.appointment_id, w.provider, w.patient)
    return w


def query(url: str, statement: str, params: Any = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(statement, params).fetchall()


def create_body(appointment_id: str = "appt_123", **extra: Any) -> dict[str, Any]:
    return {
        "action": "create",
        "appointmentId": appointment_id,
        "enableRecording": True,
        "enableTranscription": True,
        "transcriptionLanguage": "en-US",
        **extra,
    }


__all__ = [
    "BUCKET",
    "BUS",
    "Api",
    "Database",
    "LocalAws",
    "Person",
    "Reply",
    "World",
    "create_body",
    "make_runtime",
    "query",
]
