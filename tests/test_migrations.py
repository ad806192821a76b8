"""The migration runner: in order, once, each file in one transaction, safe when two runs start at once."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from videocall.core.migrate import MigrationError, apply_migrations, default_migrations_dir, load_migrations


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_applies_every_migration_once(fresh_database: str):
    names = [m.name for m in load_migrations(default_migrations_dir())]

    assert apply_migrations(fresh_database) == names
    assert apply_migrations(fresh_database) == []
    assert {"users", "appointments", "video_call_sessions", "meeting_attendees", "audit_events",
            "schema_migrations"} <= tables(fresh_database)  # fmt: skip


def test_old_systems_columns_and_indexes_exist(fresh_database: str):
    apply_migrations(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'video_call_sessions'"
        )}  # fmt: skip
        indexes = {r[0]: r[1] for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'video_call_sessions'"
        )}  # fmt: skip
    assert {
        "appointment_id", "meeting_id", "external_meeting_id", "status", "media_region", "media_placement",
        "recording_enabled", "recording_url", "recording_completed_at", "transcription_enabled",
        "transcription_language", "transcript", "transcript_segments", "attendee_tokens", "created_by", "ended_by",
        "created_at", "ended_at", "error_message", "error_occurred_at",
    } <= columns  # fmt: skip
    assert "external_meeting_id" in indexes["idx_video_call_sessions_external_meeting_id"]
    assert "WHERE (transcription_enabled = true)" in indexes["idx_video_call_sessions_transcription_enabled"]
    assert "WHERE (status = ANY" in indexes["video_call_sessions_one_live_per_appointment"]


def test_two_runs_at_once_apply_each_file_once(fresh_database: str):
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(apply_migrations(fresh_database))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(len(r) for r in results) == [0, len(load_migrations(default_migrations_dir()))]
    with psycopg.connect(fresh_database) as conn:
        (count,) = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()  # type: ignore[misc]
    assert count == len(load_migrations(default_migrations_dir()))


def test_a_failing_file_leaves_nothing_of_itself(fresh_database: str, tmp_path: Path):
    (tmp_path / "20260101000000_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "20260101000001_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        apply_migrations(fresh_database, tmp_path)
    assert "good" in tables(fresh_database) and "half" not in tables(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations")] == ["20260101000000_good.sql"]


def test_an_applied_file_that_changed_stops_the_run(fresh_database: str, tmp_path: Path):
    path = tmp_path / "20260101000000_first.sql"
    path.write_text("CREATE TABLE first (id int);")
    apply_migrations(fresh_database, tmp_path)
    path.write_text("CREATE TABLE first (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        apply_migrations(fresh_database, tmp_path)


def test_badly_named_files_are_refused(tmp_path: Path):
    (tmp_path / "initial.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="YYYYMMDDHHMMSS"):
        load_migrations(tmp_path)
