"""Chime's EventBridge events turn into session state; each database credential mode connects as designed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from conftest import Api, World, create_body, query
from handlers.chime_meeting_events import handler as meeting_events
from moto import mock_aws
from videocall.core import dbauth
from videocall.core.settings import Settings, SettingsError
from videocall.local.server import LambdaContextStub


def chime_event(event_type: str, meeting_id: str, timestamp_ms: int = 1767607200000) -> dict[str, Any]:
    return {
        "version": "0", "id": "6f1c-test", "detail-type": "Chime Meeting State Change", "source": "aws.chime",
        "account": "111122223333", "time": "2026-01-05T10:00:00Z", "region": "eu-central-1", "resources": [],
        "detail": {"version": "0", "eventType": event_type, "timestamp": timestamp_ms, "meetingId": meeting_id,
                   "externalMeetingId": "appt_123", "mediaRegion": "eu-central-1"},
    }  # fmt: skip


def test_meeting_ended_event_ends_the_session_once(api: Api, world: World, clean_db: str):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]

    first = meeting_events(chime_event("chime:MeetingEnded", meeting_id), LambdaContextStub())
    repeat = meeting_events(chime_event("chime:MeetingEnded", meeting_id, 1767607999000), LambdaContextStub())

    assert first == {"handled": "chime:MeetingEnded", "changed": True, "recordingsStopped": 0}
    assert repeat["changed"] is False
    (row,) = query(clean_db, "SELECT status, ended_at, ended_by FROM video_call_sessions")
    assert row["status"] == "ended" and row["ended_by"] is None
    assert row["ended_at"].timestamp() == 1767607200  # the event's time, not the repeat's
    actions = [r["action"] for r in query(clean_db, "SELECT action FROM audit_events WHERE actor_user_id IS NULL")]
    assert actions == ["meeting.ended_by_chime"]


def test_late_event_for_an_ended_or_unknown_meeting_changes_nothing(api: Api, world: World, clean_db: str):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.provider.token)

    late = meeting_events(chime_event("chime:MeetingEnded", meeting_id), LambdaContextStub())
    unknown = meeting_events(
        chime_event("chime:MeetingEnded", "00000000-0000-0000-0000-000000000000"), LambdaContextStub()
    )
    other = meeting_events(chime_event("chime:MeetingStarted", meeting_id), LambdaContextStub())

    assert late["changed"] is False and unknown["changed"] is False
    assert other == {"handled": "chime:MeetingStarted", "rang": 0}  # an ended meeting rings nobody
    (row,) = query(clean_db, "SELECT ended_by::text FROM video_call_sessions")
    assert row["ended_by"] == world.provider.id


# --- database credentials -------------------------------------------------------------------------------
@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(dbauth.psycopg, "connect", lambda *args, **kwargs: calls.append({"args": args, **kwargs}))
    return calls


def test_iam_mode_uses_a_fresh_token_and_tls(connect_calls, monkeypatch: pytest.MonkeyPatch):
    settings = Settings.from_env({"STAGE": "prod", "FIREBASE_PROJECT_ID": "p", "DB_AUTH": "iam",
                                  "DB_HOST": "proxy.example.internal", "DB_USER": "videocall", "DB_NAME": "videocall"})  # fmt: skip
    with mock_aws():
        connect = dbauth.connector(settings)
        connect()
    (call,) = connect_calls
    assert call["host"] == "proxy.example.internal" and call["user"] == "videocall" and call["sslmode"] == "require"
    assert "X-Amz-Signature=" in call["password"] and "Action=connect" in call["password"]
    # Prepared after 5 runs on a connection (planned once, not per request); RDS Proxy multiplexes them.
    assert call["prepare_threshold"] == 5 and call["autocommit"] is True


def test_prepared_statements_can_be_turned_off_and_bad_values_are_refused():
    base = {"STAGE": "prod", "FIREBASE_PROJECT_ID": "p"}
    assert Settings.from_env({**base, "DB_PREPARE_THRESHOLD": "off"}).db_prepare_threshold is None
    assert Settings.from_env({**base, "DB_PREPARE_THRESHOLD": "0"}).db_prepare_threshold == 0
    with pytest.raises(SettingsError, match="DB_PREPARE_THRESHOLD"):
        Settings.from_env({**base, "DB_PREPARE_THRESHOLD": "-1"})


def test_a_statement_prepared_before_a_migration_is_replanned_not_a_500(fresh_database: str):
    """A warm function's prepared statement outlives a deploy's migration that changed a column it
    returns: PostgreSQL refuses it once ("cached plan must not change result type"); the read is
    answered from a new connection, and the connection after it prepares afresh."""
    import psycopg
    from videocall.core.db import Database

    with psycopg.connect(fresh_database, autocommit=True) as admin:
        admin.execute("CREATE TABLE dose (id int PRIMARY KEY, amount int)")
        admin.execute("INSERT INTO dose VALUES (1, 5)")
    opened: list[int] = []

    def connect() -> psycopg.Connection[Any]:
        opened.append(1)
        return psycopg.connect(fresh_database, autocommit=True, prepare_threshold=0,
                               row_factory=psycopg.rows.dict_row)  # fmt: skip

    db = Database(connect)
    sql = "SELECT amount FROM dose WHERE id = %s"
    assert db.read_one(sql, (1,)) == {"amount": 5}  # prepared on the first run (threshold 0)
    with psycopg.connect(fresh_database, autocommit=True) as admin:
        admin.execute("ALTER TABLE dose ALTER COLUMN amount TYPE numeric")

    assert db.read_one(sql, (1,)) == {"amount": 5}
    assert len(opened) == 2
    assert db.read_one(sql, (1,)) == {"amount": 5} and len(opened) == 2
    db.close()


def test_the_iam_token_is_the_one_boto3_would_sign(monkeypatch: pytest.MonkeyPatch):
    """Signed locally (no RDS client: its model is a cold start's cost), it must be byte for byte what
    boto3's generate_db_auth_token makes from the same credentials at the same second."""
    from datetime import UTC, datetime
    from unittest import mock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session/token+with=chars")
    fixed = datetime(2026, 11, 26, 10, 30, 0, tzinfo=UTC)
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed.replace(tzinfo=None)):
        ours = dbauth.iam_token_signer("proxy.example.internal", 5432, "video call", "eu-central-1")()
        # a fresh session, so both resolve these credentials now (boto3's default session caches its own)
        theirs = (
            boto3.session.Session()
            .client("rds", region_name="eu-central-1")
            .generate_db_auth_token(DBHostname="proxy.example.internal", Port=5432, DBUsername="video call")
        )
    assert ours == theirs
    assert "X-Amz-Date=20261126T103000Z" in ours and "X-Amz-Expires=900" in ours


def test_secret_mode_reads_secrets_manager(connect_calls):
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="eu-central-1").create_secret(
            Name="videocall/db",
            SecretString=json.dumps(
                {"host": "db.example", "port": 6543, "username": "app", "password": "pw", "dbname": "postgres"}
            ),
        )["ARN"]
        settings = Settings.from_env({"STAGE": "prod", "FIREBASE_PROJECT_ID": "p", "DB_AUTH": "secret",
                                      "DB_SECRET_ARN": arn})  # fmt: skip
        dbauth.connector(settings)()
    (call,) = connect_calls
    assert (call["host"], call["port"], call["user"], call["password"], call["sslmode"]) == (
        "db.example", 6543, "app", "pw", "require",
    )  # fmt: skip


@pytest.mark.parametrize(
    "env",
    [{"DB_AUTH": "iam"}, {"DB_AUTH": "secret"}, {"DB_AUTH": "url"}, {"DB_AUTH": "password-in-env"}],
)
def test_incomplete_database_settings_fail_loudly(env: dict[str, str]):
    with pytest.raises(SettingsError):
        dbauth.connector(Settings.from_env({"STAGE": "prod", "FIREBASE_PROJECT_ID": "p", **env}))
