"""Simultaneous creates make one meeting; failures between Chime and the database leave nothing half done."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import Api, World, create_body, make_runtime, query
from videocall.core.errors import DatabaseUnavailable
from videocall.core.settings import Settings
from videocall.local.chime_emulator import ChimeEmulator
from videocall.meetings.repository import SessionRepository
from videocall.meetings.service import CreateMeetingCommand
from videocall.runtime import Runtime


@pytest.mark.parametrize("callers", [2, 8])
def test_simultaneous_creates_make_exactly_one_meeting(
    world: World, settings: Settings, emulator: ChimeEmulator, clean_db: str, callers: int
):
    """Each caller is its own execution environment (own connection), all released at once."""
    runtimes = [make_runtime(settings, emulator) for _ in range(callers)]
    people = [world.provider, world.patient] * (callers // 2)
    barrier = threading.Barrier(callers)

    def create(i: int):
        barrier.wait()
        return runtimes[i].service.create_meeting(
            people[i].firebase_uid, CreateMeetingCommand("appt_123", True, True, "en-US"), f"req-{i}"
        )

    try:
        with ThreadPoolExecutor(callers) as pool:
            results = list(pool.map(create, range(callers)))
    finally:
        for rt in runtimes:
            rt.db.close()

    assert len({r.meeting["MeetingId"] for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert emulator.meeting_count == 1
    rows = query(clean_db, "SELECT status, meeting_id FROM video_call_sessions")
    assert [r["status"] for r in rows] == ["active"]
    # Two people, one attendee each, however many times each asked.
    assert emulator.attendee_count(results[0].meeting["MeetingId"]) <= callers
    assert len(query(clean_db, "SELECT 1 FROM meeting_attendees")) == 2


def test_database_refuses_a_second_live_session(world: World, clean_db: str):
    import psycopg

    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO video_call_sessions (appointment_id, generation, client_request_token, status)"
            " VALUES ('appt_123', 1, 'appt_123-g1', 'creating')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO video_call_sessions (appointment_id, generation, client_request_token, status)"
                " VALUES ('appt_123', 2, 'appt_123-g2', 'creating')"
            )


def test_chime_outage_on_create_keeps_the_row_creating_and_the_retry_gets_the_same_meeting(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    emulator.fail_next["CreateMeeting"] = ["ServiceUnavailableException"]

    reply = api.legacy(create_body(), token=world.provider.token)

    assert (reply.status, reply.code) == (503, "chime_unavailable")
    assert int(reply.headers["Retry-After"]) >= 1
    (row,) = query(clean_db, "SELECT status, meeting_id, client_request_token FROM video_call_sessions")
    assert row["status"] == "creating" and row["meeting_id"] is None and emulator.meeting_count == 0

    # The retry finishes the same generation: one row, one meeting.
    again = api.legacy(create_body(), token=world.provider.token)
    assert again.status == 200
    rows = query(clean_db, "SELECT status, client_request_token FROM video_call_sessions")
    assert rows == [{"status": "active", "client_request_token": row["client_request_token"]}]
    assert emulator.meeting_count == 1


def test_throttled_attendee_on_create_keeps_the_meeting_for_the_retry(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    """Under Chime's rate limit a create whose CreateAttendee is throttled must not leave an orphan
    meeting and start a new generation: the retry gets the meeting it made."""
    emulator.fail_next["CreateAttendee"] = ["ThrottlingException"] * 5

    assert api.legacy(create_body(), token=world.provider.token).code == "chime_unavailable"
    assert emulator.meeting_count == 1 and not emulator.deleted

    again = api.legacy(create_body(), token=world.provider.token)
    assert again.status == 200 and emulator.meeting_count == 1
    (row,) = query(clean_db, "SELECT status, meeting_id FROM video_call_sessions")
    assert row == {"status": "active", "meeting_id": again.body["meeting"]["MeetingId"]}


def test_attendee_failure_after_the_meeting_was_made_takes_the_meeting_back(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    emulator.fail_next["CreateAttendee"] = ["UnprocessableEntityException"]

    reply = api.legacy(create_body(), token=world.provider.token)

    assert (reply.status, reply.code) == (502, "chime_error")
    assert emulator.meeting_count == 0 and len(emulator.deleted) == 1
    (row,) = query(clean_db, "SELECT status, error_message FROM video_call_sessions")
    assert row["status"] == "failed" and "chime_error" in row["error_message"]


def test_database_failure_after_chime_deletes_the_meeting(
    api: Api, world: World, emulator: ChimeEmulator, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
):
    def broken(self, **kwargs):
        raise DatabaseUnavailable()

    monkeypatch.setattr(SessionRepository, "activate_session", broken)

    reply = api.legacy(create_body(), token=world.provider.token)

    assert (reply.status, reply.code) == (503, "database_unavailable")
    assert emulator.meeting_count == 0 and len(emulator.deleted) == 1


def test_abandoned_create_is_taken_over_after_it_goes_stale(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    import psycopg

    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO video_call_sessions (appointment_id, generation, client_request_token, status, updated_at)"
            " VALUES ('appt_123', 1, 'appt_123-g1', 'creating', now() - interval '10 minutes')"
        )

    reply = api.legacy(create_body(), token=world.provider.token)

    assert reply.status == 200
    rows = query(clean_db, "SELECT generation, status, error_message FROM video_call_sessions ORDER BY generation")
    assert [(r["generation"], r["status"]) for r in rows] == [(1, "failed"), (2, "active")]
    assert rows[0]["error_message"] == "create abandoned"


def test_create_in_flight_is_joined_not_duplicated(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    """A fresh 'creating' row: the second request makes the same CreateMeeting call (same token)."""
    import psycopg

    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO video_call_sessions (appointment_id, generation, client_request_token, status, created_by)"
            " VALUES ('appt_123', 1, 'appt_123-g1', 'creating', %s)",
            (world.provider.id,),
        )
    # The leader already reached Chime: its meeting exists under the same token.
    leader = emulator.create_meeting(ClientRequestToken="appt_123-g1", ExternalMeetingId="appt_123",
                                     MediaRegion="eu-central-1")["Meeting"]  # fmt: skip

    reply = api.legacy(create_body(), token=world.patient.token)

    assert reply.status == 200 and reply.body["meeting"]["MeetingId"] == leader["MeetingId"]
    assert emulator.meeting_count == 1
    (row,) = query(clean_db, "SELECT status, meeting_id FROM video_call_sessions")
    assert row == {"status": "active", "meeting_id": leader["MeetingId"]}


def test_throttled_create_is_retried_transparently(api: Api, world: World, emulator: ChimeEmulator):
    emulator.fail_next["CreateMeeting"] = ["ThrottlingException", "ThrottlingException"]
    reply = api.legacy(create_body(), token=world.provider.token)
    assert reply.status == 200 and emulator.meeting_count == 1


def test_broken_connection_is_replaced_on_the_next_request(api: Api, world: World, runtime: Runtime, clean_db: str):
    import psycopg

    assert api.legacy(create_body(), token=world.provider.token).status == 200
    pid = runtime.db.connection().info.backend_pid
    with psycopg.connect(clean_db, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    reply = api.legacy(create_body(), token=world.patient.token)

    assert reply.status == 200
    assert runtime.db.connection().info.backend_pid != pid
