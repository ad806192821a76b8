"""The post-call survey: once per person per meeting (a second answer replaces the first), metrics
for the dashboard, the comment kept out of logs and covered by export and erasure."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import Api, Person, World, add_user, create_body, query


@pytest.fixture
def ended_meeting(api: Api, world: World) -> str:
    body = {k: v for k, v in create_body(enableRecording=False, enableTranscription=False).items() if k != "action"}
    meeting_id = api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    return meeting_id


COMMENT = "Dizzy after the new metoprolol dose, the audio dropped twice"


def test_feedback_after_the_call_once_per_person_and_a_second_answer_replaces_the_first(
    api: Api, world: World, ended_meeting: str, clean_db: str
):
    path = f"/meetings/{ended_meeting}/feedback"
    first = api.post(path, {"rating": 2, "issues": ["audio", "connection"], "comment": COMMENT},
                     token=world.patient.token)  # fmt: skip
    assert first.status == 200, first.body
    assert (first.body["rating"], first.body["issues"], first.body["hasComment"], first.body["replaced"]) == (
        2, ["audio", "connection"], True, False)  # fmt: skip
    second = api.post(path, {"rating": 4}, token=world.patient.token)
    assert second.body["replaced"] is True and second.body["issues"] == []
    api.post(path, {"rating": 5}, token=world.provider.token)
    rows = query(clean_db, "SELECT user_id::text AS user_id, rating, issues, comment FROM call_feedback"
                           " ORDER BY rating")  # fmt: skip
    assert rows == [{"user_id": world.patient.id, "rating": 4, "issues": [], "comment": None},
                    {"user_id": world.provider.id, "rating": 5, "issues": [], "comment": None}]  # fmt: skip
    (audit,) = query(clean_db, "SELECT details FROM audit_events WHERE action = 'feedback.give' ORDER BY id LIMIT 1")
    assert audit["details"] == {"rating": 2, "issues": ["audio", "connection"]}  # never the comment


@pytest.mark.parametrize(
    "bad",
    [
        {"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4.5}, {},
        {"rating": 3, "issues": ["smell"]}, {"rating": 3, "issues": "audio"},
        {"rating": 3, "issues": ["audio", "audio"]}, {"rating": 3, "comment": "x" * 1001},
    ],
)  # fmt: skip
def test_bad_feedback_is_400(api: Api, world: World, ended_meeting: str, bad: dict):
    reply = api.post(f"/meetings/{ended_meeting}/feedback", bad, token=world.patient.token)
    assert reply.status == 400, reply.body
    assert "metoprolol" not in json.dumps(reply.body)


def test_only_participants_give_feedback(api: Api, world: World, ended_meeting: str):
    for who in (world.outsider, world.nurse):
        reply = api.post(f"/meetings/{ended_meeting}/feedback", {"rating": 5}, token=who.token)
        assert (reply.status, reply.code) == (404, "meeting_not_found")
    assert api.post(f"/meetings/{ended_meeting}/feedback", {"rating": 5}).code == "token_missing"


def test_ratings_and_issues_become_metrics_and_the_comment_never_reaches_a_log(
    api: Api, world: World, ended_meeting: str, capfd: pytest.CaptureFixture[str]
):
    capfd.readouterr()
    api.post(f"/meetings/{ended_meeting}/feedback", {"rating": 2, "issues": ["video"], "comment": COMMENT},
             token=world.patient.token)  # fmt: skip
    out = capfd.readouterr()
    blobs = [json.loads(line) for line in out.out.splitlines() if '"_aws"' in line]
    rating = [b for b in blobs if "CallRating" in b]
    assert rating and rating[0]["CallRating"] == [2.0]
    issues = [b for b in blobs if "CallIssues" in b]
    assert [b["issue"] for b in issues] == ["video"]
    assert "metoprolol" not in out.out + out.err


def test_export_carries_the_comment_and_erasure_deletes_it(api: Api, world: World, ended_meeting: str, clean_db: str):
    api.post(f"/meetings/{ended_meeting}/feedback", {"rating": 1, "comment": COMMENT}, token=world.patient.token)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin: Person = add_user(conn, "fb-dpo", "admin", "Data Protection Officer")
    exported = api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token).body
    assert [f["comment"] for f in exported["content"]["feedback"]] == [COMMENT]
    erased = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    assert erased.body["deleted"]["feedback"] == 1
    assert query(clean_db, "SELECT count(*) AS n FROM call_feedback")[0]["n"] == 0
