"""The in-call chat (videocall.chat): the durable history of an appointment's conversation, its order
under concurrent inserts, idempotent posts, who sees which message, receipts, reactions, attachments
(presigned POST into the attachments bucket, links only after the malware scan), privacy, logs, and the
round trips each action costs."""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests
from conftest import (
    ATTACHMENTS_BUCKET,
    BUS,
    PROJECT,
    Api,
    LocalAws,
    Reply,
    World,
    add_appointment,
    add_user,
    create_body,
    make_runtime,
    query,
)
from videocall.chat.storage import SCAN_TAG, safe_file_name
from videocall.core.access import authorize_join
from videocall.core.context import appointment_from, caller_from
from videocall.core.db import Database
from videocall.core.errors import DomainError
from videocall.core.settings import Settings
from videocall.local.devtools import emulator_id_token
from videocall.runtime import Runtime

PDF = b"%PDF-1.4\n% a small test document\n" + b"x" * 200


def new_meeting(api: Api, world: World, appointment: str = "appt_123") -> str:
    body = {k: v for k, v in create_body(appointment, enableRecording=False, enableTranscription=False).items()
            if k != "action"}  # fmt: skip
    reply = api.post("/meetings", body, token=world.provider.token)
    assert reply.status in (200, 201), reply.body
    meeting_id: str = reply.body["meeting"]["MeetingId"]
    assert api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token).status == 200
    return meeting_id


_ids = itertools.count(1)


def post(api: Api, meeting_id: str, token: str, text: str = "hello", **extra: Any) -> Reply:
    body = {"clientMessageId": extra.pop("clientMessageId", f"c-{next(_ids)}"), "text": text, **extra}
    return api.post(f"/meetings/{meeting_id}/messages", body, token=token)


def page(api: Api, meeting_id: str, token: str, query_string: str = "") -> Reply:
    return api.get(f"/meetings/{meeting_id}/messages{query_string}", token=token)


def texts(reply: Reply) -> list[str]:
    assert reply.status == 200, reply.body
    return [m["text"] for m in reply.body["messages"]]


def upload(form: dict[str, Any], content: bytes, file_name: str = "file.pdf") -> requests.Response:
    """What the app (or `curl -F`) does with the presigned POST: every field, then the file last."""
    return requests.post(form["url"], data=form["fields"], files={"file": (file_name, content)}, timeout=10)


def attach(api: Api, meeting_id: str, token: str, *, name: str = "lab result.pdf", kind: str = "application/pdf",
           content: bytes = PDF, uploaded: bool = True) -> str:  # fmt: skip
    reply = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": name, "contentType": kind,
                                                             "size": len(content)}, token=token)  # fmt: skip
    assert reply.status == 201, reply.body
    if uploaded:
        assert upload(reply.body["upload"], content).status_code == 204
    return str(reply.body["attachmentId"])


def tag(aws: LocalAws, clean_db: str, attachment_id: str, verdict: str) -> None:
    """Play GuardDuty: tag the object with its verdict."""
    key = query(clean_db, "SELECT s3_key FROM chat_attachments WHERE id = %s", (attachment_id,))[0]["s3_key"]
    aws.s3.put_object_tagging(Bucket=ATTACHMENTS_BUCKET, Key=key,
                              Tagging={"TagSet": [{"Key": SCAN_TAG, "Value": verdict}]})  # fmt: skip


# --- who may do what ---------------------------------------------------------------------------------------
def chat_calls(api: Api, world: World, meeting_id: str) -> dict[str, Callable[[str | None], Reply]]:
    """A call of each chat route for a token (also used by tests/test_authorization_matrix.py). The provider
    posts one message with an attachment (not uploaded: the link answers 409 attachment_not_uploaded for
    those who may see it) for the routes that need a message."""
    attachment_id = attach(api, meeting_id, world.provider.token, uploaded=False)
    message_id = post(api, meeting_id, world.provider.token, "see the attached", attachmentId=attachment_id).body[
        "messageId"]  # fmt: skip
    base = f"/meetings/{meeting_id}"
    return {
        "post_message": lambda t: post(api, meeting_id, t),  # type: ignore[arg-type]
        "list_messages": lambda t: api.get(f"{base}/messages", token=t),
        "mark_messages_read": lambda t: api.post(f"{base}/messages/read", {"upTo": message_id}, token=t),
        "put_reaction": lambda t: api.put(f"{base}/messages/{message_id}/reaction", {"emoji": "👍"}, token=t),
        "delete_reaction": lambda t: api.delete(f"{base}/messages/{message_id}/reaction", token=t),
        "create_attachment": lambda t: api.post(
            f"{base}/attachments", {"fileName": "a.png", "contentType": "image/png", "size": 10}, token=t
        ),
        "get_attachment": lambda t: api.get(f"{base}/attachments/{attachment_id}", token=t),
    }


CALLERS = ("provider", "patient", "other_patient", "admin", "unregistered")
EXPECTED: dict[str, tuple[tuple[int, str | None], ...]] = {
    route: ((ok, None), (ok, None), (404, "meeting_not_found"), (404, "meeting_not_found"),
            (401, "user_not_registered"))
    for route, ok in (("post_message", 201), ("list_messages", 200), ("mark_messages_read", 200),
                      ("put_reaction", 200), ("delete_reaction", 200), ("create_attachment", 201))
}  # fmt: skip
# Both may see the message its attachment was sent in; nothing was uploaded: the next rule answers.
EXPECTED["get_attachment"] = ((409, "attachment_not_uploaded"), (409, "attachment_not_uploaded"),
                              (404, "meeting_not_found"), (404, "meeting_not_found"), (401, "user_not_registered"))  # fmt: skip


@pytest.fixture
def callers(world: World, clean_db: str) -> dict[str, str]:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
        add_appointment(conn, "appt_other", world.provider, world.outsider)
    return {"provider": world.provider.token, "patient": world.patient.token, "other_patient": world.outsider.token,
            "admin": admin.token, "unregistered": emulator_id_token("fb-nobody-registered", PROJECT)}  # fmt: skip


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_each_chat_route_answers_each_caller_as_the_rules_say(api: Api, world: World, callers, route: str):
    calls = chat_calls(api, world, new_meeting(api, world))
    for who, (status, code) in zip(CALLERS, EXPECTED[route], strict=True):
        reply = calls[route](callers[who])
        assert (reply.status, reply.code) == (status, code), f"{route} as {who}: {reply.body}"
    assert calls[route](None).code == "token_missing"


def test_the_sql_participant_rule_agrees_with_the_python_rule(api: Api, world: World, runtime: Runtime,
                                                              callers, clean_db: str):  # fmt: skip
    """The history page authorizes in SQL (so the page and its audit row cost one round trip); the Python rule
    (core.access.authorize_join) decides. For every kind of caller and meeting, the two agree."""
    first = new_meeting(api, world)
    api.post(f"/meetings/{first}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)
    api.delete(f"/meetings/{first}", token=world.provider.token)
    second = new_meeting(api, world)
    api.post(f"/meetings/{second}/attendees/batch", {"userIds": [world.interpreter.id]}, token=world.provider.token)
    missing = "00000000-0000-4000-8000-000000000000"
    uids = [p.firebase_uid for p in world.people] + ["fb-admin"]
    cases = 0
    for uid, meeting_id in itertools.product(uids, (first, second, missing)):
        row = runtime.chat_repository.page(uid, meeting_id, after=None, before=None, limit=5, cursor_appointment=None,
                                           audit_action="test.page", request_id=None)  # fmt: skip
        caller = caller_from(row)
        assert row is not None
        try:
            authorize_join(caller, appointment_from(row), was_added=bool(row["caller_was_added"]))
            allowed = True
        except DomainError:
            allowed = False
        assert row["sql_participant"] is allowed, (uid, meeting_id)
        cases += allowed
    assert cases == 2 * 2 + 2  # provider and patient in both meetings, the nurse in the first, the interpreter
    audited = query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'test.page'")[0]["n"]
    assert audited == cases  # the statement audits exactly the reads it allowed


# --- order, idempotency, concurrency ------------------------------------------------------------------------
def test_a_retried_post_returns_the_stored_message_never_a_second_one(api: Api, world: World, clean_db: str):
    meeting_id = new_meeting(api, world)
    first = post(api, meeting_id, world.patient.token, "I feel dizzy", clientMessageId="m-1")
    again = post(api, meeting_id, world.patient.token, "I feel dizzy", clientMessageId="m-1")
    other_sender = post(api, meeting_id, world.provider.token, "since when?", clientMessageId="m-1")

    assert (first.status, again.status, other_sender.status) == (201, 200, 201)
    assert again.body == first.body
    assert other_sender.body["messageId"] != first.body["messageId"]  # the id is per sender
    assert texts(page(api, meeting_id, world.provider.token)) == ["I feel dizzy", "since when?"]
    assert query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'chat.post'")[0]["n"] == 2


def test_concurrent_retries_of_one_message_store_it_once(settings: Settings, emulator, api: Api, world: World,
                                                         clean_db: str):  # fmt: skip
    meeting_id = new_meeting(api, world)
    runtimes = [make_runtime(settings, emulator) for _ in range(6)]
    barrier = threading.Barrier(len(runtimes))
    results: list[tuple[str, bool]] = []

    def send(rt: Runtime) -> None:
        barrier.wait()
        message, stored = rt.chat.post(world.patient.firebase_uid, meeting_id, None, client_message_id="same",
                                       text="only once")  # fmt: skip
        results.append((message["messageId"], stored))

    threads = [threading.Thread(target=send, args=(rt,)) for rt in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for rt in runtimes:
        rt.db.close()
    assert len(results) == 6 and len({m for m, _ in results}) == 1
    assert sorted(stored for _, stored in results) == [False] * 5 + [True]
    assert query(clean_db, "SELECT count(*) AS n FROM chat_messages")[0]["n"] == 1
    assert query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'chat.post'")[0]["n"] == 1


def test_polling_with_after_never_skips_or_repeats_a_message_under_concurrent_inserts(
    settings: Settings, emulator, api: Api, world: World
):
    """Writers post from several connections while a reader polls with the `next` cursor: every message
    arrives exactly once, in seq order."""
    meeting_id = new_meeting(api, world)
    writers, per_writer = 4, 40
    done = threading.Event()
    seen: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def write(n: int) -> None:
        rt = make_runtime(settings, emulator)
        try:
            who = world.provider if n % 2 else world.patient
            for i in range(per_writer):
                rt.chat.post(who.firebase_uid, meeting_id, None, client_message_id=f"w{n}-{i}", text=f"w{n}-{i}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            rt.db.close()

    def read() -> None:
        rt = make_runtime(settings, emulator)
        cursor = start
        try:
            while True:
                finished = done.is_set()
                got = rt.chat.history(world.provider.firebase_uid, meeting_id, None, after=cursor, limit=7)
                seen.extend(got["messages"])
                cursor = got["next"]
                if finished and not got["messages"]:
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            rt.db.close()

    start = page(api, meeting_id, world.provider.token).body["next"]  # the app joined: nothing yet
    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    reader.join(60)

    assert not errors, errors
    sent = {f"w{n}-{i}" for n in range(writers) for i in range(per_writer)}
    assert [m["text"] for m in seen if m["text"] in sent] == [m["text"] for m in seen]
    assert len(seen) == len(sent) and {m["text"] for m in seen} == sent  # none skipped, none twice
    seqs = [m["seq"] for m in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_message_numbered_lower_cannot_commit_after_a_higher_one_is_visible(
    settings: Settings, emulator, api: Api, world: World, clean_db: str
):
    """The deterministic version: a first insert holds its transaction open; a second post waits for it (the
    conversation row's lock), so no reader can see the higher number while the lower one is uncommitted."""
    meeting_id = new_meeting(api, world)
    post(api, meeting_id, world.patient.token, "before")
    cursor = page(api, meeting_id, world.provider.token).body["next"]
    context = query(clean_db, """SELECT s.id::text AS session_id FROM video_call_sessions s WHERE meeting_id = %s""",
                    (meeting_id,))[0]  # fmt: skip
    held = psycopg.connect(clean_db)  # not autocommit: the transaction stays open
    from psycopg.rows import dict_row
    from videocall.chat.repository import ChatRepository
    from videocall.core.audit import AuditEntry

    held.row_factory = dict_row  # type: ignore[assignment]
    slow = ChatRepository(Database(lambda: held))  # type: ignore[arg-type,return-value]
    slow.insert_message(
        appointment_id="appt_123", session_id=context["session_id"], sender_id=world.provider.id,
        client_message_id="slow", text="slow", reply_to=None, attachment_id=None, provider_id=world.provider.id,
        patient_id=world.patient.id, audit=AuditEntry(world.provider.id, "chat.post", "appt_123", None, meeting_id, None),
    )  # fmt: skip
    fast_rt, reader = make_runtime(settings, emulator), make_runtime(settings, emulator)
    fast_done = threading.Event()
    fast = threading.Thread(target=lambda: (fast_rt.chat.post(world.patient.firebase_uid, meeting_id, None,
                                                              client_message_id="fast", text="fast"),
                                            fast_done.set()))  # fmt: skip
    fast.start()
    time.sleep(0.5)
    in_between = reader.chat.history(world.provider.firebase_uid, meeting_id, None, after=cursor)
    assert not fast_done.is_set(), "the second post must wait for the first to commit"
    assert in_between["messages"] == []
    held.commit()
    fast.join(10)
    after = reader.chat.history(world.provider.firebase_uid, meeting_id, None, after=cursor)
    assert [(m["text"], m["seq"]) for m in after["messages"]] == [("slow", 2), ("fast", 3)]
    held.close()
    fast_rt.db.close()
    reader.db.close()


def test_pages_newest_first_then_back_and_forward_in_a_stable_order(api: Api, world: World):
    meeting_id = new_meeting(api, world)
    for i in range(1, 8):
        assert post(api, meeting_id, world.patient.token, f"m{i}").status == 201
    newest = page(api, meeting_id, world.provider.token, "?limit=3")
    assert texts(newest) == ["m5", "m6", "m7"] and newest.body["hasMore"] is True
    older = page(api, meeting_id, world.provider.token, f"?limit=3&before={newest.body['previous']}")
    assert texts(older) == ["m2", "m3", "m4"] and older.body["hasMore"] is True
    oldest = page(api, meeting_id, world.provider.token, f"?limit=3&before={older.body['previous']}")
    assert texts(oldest) == ["m1"] and oldest.body["hasMore"] is False and oldest.body["previous"] is None
    forward = page(api, meeting_id, world.provider.token, f"?limit=4&after={oldest.body['next']}")
    assert texts(forward) == ["m2", "m3", "m4", "m5"] and forward.body["hasMore"] is True
    post(api, meeting_id, world.provider.token, "m8")
    rest = page(api, meeting_id, world.provider.token, f"?limit=4&after={forward.body['next']}")
    assert texts(rest) == ["m6", "m7", "m8"] and rest.body["hasMore"] is False
    idle = page(api, meeting_id, world.provider.token, f"?after={rest.body['next']}")
    assert texts(idle) == [] and idle.body["next"] == rest.body["next"]  # poll again from the same place


# --- the conversation across meetings, and group calls -------------------------------------------------------
def test_a_recreated_meeting_shows_the_appointments_history_and_an_added_user_only_their_meetings(
    api: Api, world: World
):
    first = new_meeting(api, world)
    post(api, first, world.patient.token, "my chest hurts")
    earlier = post(api, first, world.provider.token, "since when?").body
    api.delete(f"/meetings/{first}", token=world.provider.token)

    second = new_meeting(api, world)  # the appointment's next meeting (a new session)
    assert second != first
    api.post(f"/meetings/{second}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)
    post(api, second, world.provider.token, "Nurse Ode joins us")
    post(api, second, world.nurse.token, "hello")

    everything = ["my chest hurts", "since when?", "Nurse Ode joins us", "hello"]
    assert texts(page(api, second, world.patient.token)) == everything
    assert texts(page(api, first, world.provider.token)) == everything  # through the old meeting, too
    assert [m["meetingId"] for m in page(api, second, world.patient.token).body["messages"]] == [first] * 2 + [
        second
    ] * 2
    assert texts(page(api, second, world.nurse.token)) == ["Nurse Ode joins us", "hello"]
    assert page(api, first, world.nurse.token).code == "meeting_not_found"  # not part of the first meeting
    # What the nurse cannot see, they cannot reply to, react to or mark read either.
    assert post(api, second, world.nurse.token, "re", replyTo=earlier["messageId"]).code == "reply_to_not_found"
    assert api.put(f"/meetings/{second}/messages/{earlier['messageId']}/reaction", {"emoji": "👍"},
                   token=world.nurse.token).code == "message_not_found"  # fmt: skip
    assert api.post(f"/meetings/{second}/messages/read", {"upTo": earlier["messageId"]},
                    token=world.nurse.token).code == "message_not_found"  # fmt: skip
    # The ended meeting keeps its history readable but takes no new messages.
    assert post(api, first, world.patient.token, "late").code == "meeting_ended"


def test_an_attachment_is_seen_by_those_who_see_its_message(api: Api, world: World, aws: LocalAws, clean_db: str):
    first = new_meeting(api, world)
    private = attach(api, first, world.patient.token, name="scan.png", kind="image/png", content=b"\x89PNG" + b"0" * 50)
    post(api, first, world.patient.token, "my scan", attachmentId=private)
    api.delete(f"/meetings/{first}", token=world.provider.token)
    second = new_meeting(api, world)
    api.post(f"/meetings/{second}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)
    shared = attach(api, second, world.provider.token)
    unsent = attach(api, second, world.provider.token)
    post(api, second, world.provider.token, "lab results", attachmentId=shared)

    def link(token: str, attachment_id: str) -> Reply:
        return api.get(f"/meetings/{second}/attachments/{attachment_id}", token=token)

    assert link(world.provider.token, private).status == 200  # the whole conversation
    assert link(world.nurse.token, private).code == "attachment_not_found"  # an earlier meeting's
    assert link(world.nurse.token, shared).status == 200
    assert link(world.provider.token, unsent).status == 200  # its uploader, before sending it
    assert link(world.patient.token, unsent).code == "attachment_not_found"  # nobody else
    # An attachment is sent once, by its uploader, within its appointment.
    assert post(api, second, world.provider.token, "again", attachmentId=shared).code == "attachment_not_available"
    assert post(api, second, world.patient.token, "mine?", attachmentId=unsent).code == "attachment_not_available"


# --- receipts and reactions ----------------------------------------------------------------------------------
def test_read_receipts_and_reactions_come_with_the_messages(api: Api, world: World):
    meeting_id = new_meeting(api, world)
    one = post(api, meeting_id, world.patient.token, "one").body
    two = post(api, meeting_id, world.patient.token, "two").body
    base = f"/meetings/{meeting_id}/messages"

    assert api.post(f"{base}/read", {"upTo": two["messageId"]}, token=world.provider.token).body["readUpToSeq"] == 2
    moved_back = api.post(f"{base}/read", {"upTo": one["messageId"]}, token=world.provider.token)
    assert moved_back.body["readUpToSeq"] == 2  # never moves back
    api.put(f"{base}/{one['messageId']}/reaction", {"emoji": "❤️"}, token=world.provider.token)
    api.put(f"{base}/{one['messageId']}/reaction", {"emoji": "👍"}, token=world.patient.token)
    changed = api.put(f"{base}/{one['messageId']}/reaction", {"emoji": "❤️"}, token=world.patient.token)
    assert changed.body["reactions"] == [{"emoji": "❤️", "count": 2, "mine": True}]  # one per user: replaced

    seen = page(api, meeting_id, world.provider.token).body
    assert seen["readReceipts"] == [{"userId": world.provider.id, "readUpToSeq": 2,
                                     "readAt": seen["readReceipts"][0]["readAt"]}]  # fmt: skip
    assert seen["messages"][0]["reactions"] == [{"emoji": "❤️", "count": 2, "mine": True}]
    assert seen["messages"][1]["reactions"] == []

    removed = api.delete(f"{base}/{one['messageId']}/reaction", token=world.provider.token)
    assert removed.body["reactions"] == [{"emoji": "❤️", "count": 1, "mine": False}]
    again = api.delete(f"{base}/{one['messageId']}/reaction", token=world.provider.token)
    assert again.status == 200 and again.body["reactions"] == removed.body["reactions"]  # idempotent
    assert page(api, meeting_id, world.provider.token).body["messages"][0]["reactions"] == removed.body["reactions"]
    unknown = api.put(f"{base}/{one['messageId']}/reaction", {"emoji": "💩"}, token=world.patient.token)
    assert (unknown.status, unknown.code) == (400, "unknown_reaction")


# --- bad input ------------------------------------------------------------------------------------------------
def test_bad_input_gets_its_own_4xx_code(api: Api, world: World, clean_db: str):
    meeting_id = new_meeting(api, world)
    tok = world.patient.token
    assert post(api, meeting_id, tok, "é" * 750).status == 201  # 1,500 bytes: allowed
    too_long = post(api, meeting_id, tok, "é" * 751)  # 751 characters, 1,502 bytes
    assert (too_long.status, too_long.code) == (400, "message_too_long")
    assert post(api, meeting_id, tok, "   ").code == "message_empty"
    assert post(api, meeting_id, tok, "x", clientMessageId="has space").code == "invalid_request"

    cursor = page(api, meeting_id, tok).body["next"]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-20] ^= 1  # one bit of the position changed
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (tampered, "not-a-cursor", cursor[:-2], "A" * 150):
        reply = page(api, meeting_id, tok, f"?after={bad}")
        assert (reply.status, reply.code) == (400, "invalid_cursor"), bad
    both = page(api, meeting_id, tok, f"?after={cursor}&before={cursor}")
    assert both.code == "invalid_request"

    huge = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "big.pdf", "contentType": "application/pdf",
                                                             "size": 10 * 1024 * 1024 + 1}, token=tok)  # fmt: skip
    assert (huge.status, huge.code) == (413, "attachment_too_large")
    html = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "x.html", "contentType": "text/html",
                                                             "size": 10}, token=tok)  # fmt: skip
    assert (html.status, html.code) == (415, "attachment_type_not_allowed")
    crlf = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "a\r\nb.pdf", "contentType": "application/pdf",
                                                             "size": 10}, token=tok)  # fmt: skip
    assert crlf.code == "invalid_request"
    nowhere = "00000000-0000-4000-8000-000000000000"
    assert post(api, meeting_id, tok, "re", replyTo=nowhere).code == "reply_to_not_found"
    assert post(api, meeting_id, tok, "att", attachmentId=nowhere).code == "attachment_not_available"
    assert api.get(f"/meetings/{meeting_id}/attachments/{nowhere}", token=tok).code == "attachment_not_found"
    assert api.put(f"/meetings/{meeting_id}/messages/{nowhere}/reaction", {"emoji": "👍"},
                   token=tok).code == "message_not_found"  # fmt: skip
    # No 500 anywhere, and nothing stored by the refusals.
    assert query(clean_db, "SELECT count(*) AS n FROM chat_messages")[0]["n"] == 1


def test_a_cursor_of_another_conversation_reads_nothing_of_it(api: Api, world: World, clean_db: str):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        add_appointment(conn, "appt_456", world.provider, world.outsider)
    mine = new_meeting(api, world)
    body = {k: v for k, v in create_body("appt_456", enableRecording=False, enableTranscription=False).items()
            if k != "action"}  # fmt: skip
    theirs = api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    for i in range(3):
        post(api, theirs, world.provider.token, f"private {i}")
    post(api, mine, world.patient.token, "mine")
    foreign = page(api, theirs, world.provider.token, "?limit=1").body["previous"]  # a cursor of appt_456
    reply = page(api, mine, world.patient.token, f"?before={foreign}")
    assert (reply.status, reply.code) == (400, "invalid_cursor")
    assert "private" not in json.dumps(reply.body)


# --- attachments ----------------------------------------------------------------------------------------------
def s3_would_accept(form: dict[str, Any], content: bytes, fields: dict[str, str] | None = None) -> bool:
    """S3's POST policy check (moto does not make it: its POST handler ignores the policy): every condition
    holds for the form, the file's length is in content-length-range, and every form field is named by a
    condition (S3 refuses fields the policy does not cover)."""
    sent = {k.lower(): v for k, v in {**form["fields"], **(fields or {})}.items()}
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    covered = {"policy", "x-amz-signature", "file"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            covered.add(name.lower())
            if name.lower() != "bucket" and sent.get(name.lower()) != value:
                return False
        elif condition[0] == "content-length-range":
            if not condition[1] <= len(content) <= condition[2]:
                return False
        elif condition[0] in ("eq", "starts-with"):
            name = condition[1].lstrip("$").lower()
            covered.add(name)
            ok = sent.get(name) == condition[2] if condition[0] == "eq" else sent.get(name, "").startswith(condition[2])
            if not ok:
                return False
    return not set(sent) - covered


def test_upload_with_the_presigned_post_and_download_as_an_attachment(api: Api, world: World, aws: LocalAws,
                                                                    clean_db: str):  # fmt: skip
    meeting_id = new_meeting(api, world)
    name = 'Röntgen "befund" Kim.pdf'
    created = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": name, "contentType": "application/pdf",
                                                                "size": len(PDF)}, token=world.patient.token).body  # fmt: skip
    form = created["upload"]
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert ["content-length-range", 1, len(PDF)] in policy["conditions"]
    assert {"Content-Type": "application/pdf"} in policy["conditions"]
    assert {"x-amz-server-side-encryption": "aws:kms"} in policy["conditions"]
    assert {"x-amz-server-side-encryption-aws-kms-key-id": aws.attachments_key_arn} in policy["conditions"]
    key = form["fields"]["key"]
    assert key.startswith("attachments/appt_123/") and "pdf" not in key.lower()  # ids only, no file name
    assert urlsplit(form["url"]).path.strip("/").startswith(ATTACHMENTS_BUCKET)  # its own bucket

    # What S3 would refuse: larger than declared, another type, a tag smuggled in, another key.
    assert s3_would_accept(form, PDF)
    assert not s3_would_accept(form, PDF + b"!")
    assert not s3_would_accept(form, PDF, {"Content-Type": "text/html"})
    assert not s3_would_accept(
        form,
        PDF,
        {
            "tagging": f"<Tagging><TagSet><Tag><Key>{SCAN_TAG}</Key>"
            "<Value>NO_THREATS_FOUND</Value></Tag></TagSet></Tagging>"
        },
    )
    assert not s3_would_accept(form, PDF, {"key": "recordings/appt_123/x"})

    assert upload(form, PDF).status_code == 204  # to moto, as the app would
    head = aws.s3.head_object(Bucket=ATTACHMENTS_BUCKET, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == aws.attachments_key_arn
    post(api, meeting_id, world.patient.token, "my x-ray report", attachmentId=created["attachmentId"])

    link = api.get(f"/meetings/{meeting_id}/attachments/{created['attachmentId']}", token=world.provider.token)
    assert link.status == 200 and link.body["fileName"] == name and link.body["expiresInSeconds"] == 300
    url = link.body["downloadUrl"]
    params = parse_qs(urlsplit(url).query)
    assert params["response-content-disposition"] == ['attachment; filename="Rontgen_befund_Kim.pdf"']
    assert int(params["X-Amz-Expires"][0]) == 300
    downloaded = requests.get(url, timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == PDF
    issued = query(clean_db, "SELECT actor_user_id::text AS actor, details FROM audit_events"
                             " WHERE action = 'chat.attachment_link'")  # fmt: skip
    assert [(e["actor"], e["details"]) for e in issued] == [(world.provider.id,
                                                            {"attachment_id": created["attachmentId"]})]  # fmt: skip
    assert query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'chat.attachment_upload_link'"
                 )[0]["n"] == 1  # fmt: skip


def test_safe_file_names_for_content_disposition():
    assert safe_file_name('a"b\\c;\r\nd.pdf') == "a_b_c_d.pdf"
    assert safe_file_name("../../etc/passwd") == "etc_passwd"
    assert safe_file_name("日本語.png") == "png"
    assert safe_file_name("...") == "attachment"
    long = safe_file_name("x" * 300 + ".jpeg")
    assert len(long) <= 100 and long.endswith(".jpeg")


def test_a_threat_or_a_missing_verdict_is_never_handed_out(api: Api, world: World, aws: LocalAws, clean_db: str,
                                                           runtime: Runtime, monkeypatch):  # fmt: skip
    meeting_id = new_meeting(api, world)
    attachment_id = attach(api, meeting_id, world.patient.token)
    post(api, meeting_id, world.patient.token, "file", attachmentId=attachment_id)
    url = f"/meetings/{meeting_id}/attachments/{attachment_id}"

    # Locally nothing scans (ATTACHMENT_SCAN_REQUIRED off): an untagged object is served...
    assert runtime.settings.attachment_scan_required is False
    assert api.get(url, token=world.provider.token).status == 200
    # ...but where scanning is required (every deployed stage), not before GuardDuty's verdict.
    monkeypatch.setattr(runtime.chat, "_scan_required", True)
    waiting = api.get(url, token=world.provider.token)
    assert (waiting.status, waiting.code, waiting.headers.get("Retry-After")) == (409, "attachment_not_scanned", "15")
    tag(aws, clean_db, attachment_id, "NO_THREATS_FOUND")
    assert api.get(url, token=world.provider.token).status == 200
    for verdict in ("THREATS_FOUND", "UNSUPPORTED", "FAILED"):
        tag(aws, clean_db, attachment_id, verdict)
        blocked = api.get(url, token=world.provider.token)
        assert (blocked.status, blocked.code) == (422, "attachment_blocked") and "downloadUrl" not in blocked.body
    monkeypatch.setattr(runtime.chat, "_scan_required", False)
    assert api.get(url, token=world.provider.token).code == "attachment_blocked"  # a threat is refused anywhere
    denied = query(clean_db, "SELECT details FROM audit_events WHERE action = 'chat.attachment_link'"
                             " AND outcome = 'denied'")  # fmt: skip
    assert [d["details"]["reason"] for d in denied] == ["attachment_not_scanned"] + ["attachment_blocked"] * 4


def test_deployed_stages_require_the_scan():
    from videocall.core.settings import SettingsError

    base = {"STAGE": "prod", "FIREBASE_PROJECT_ID": "p", "CHIME_BACKEND": "aws"}
    assert Settings.from_env(base).attachment_scan_required is True
    with pytest.raises(SettingsError, match="ATTACHMENT_SCAN_REQUIRED"):
        Settings.from_env({**base, "ATTACHMENT_SCAN_REQUIRED": "false"})


# --- privacy: export, erasure, retention ------------------------------------------------------------------------
def test_export_erasure_and_retention_cover_messages_and_attachment_objects(
    api: Api, world: World, aws: LocalAws, clean_db: str
):
    from handlers.apply_retention import handler as retention
    from videocall.local.server import LambdaContextStub

    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
        add_appointment(conn, "appt_old", world.provider, world.patient)
    meeting_id = new_meeting(api, world)
    attachment_id = attach(api, meeting_id, world.patient.token, name="allergy list.pdf")
    sent = post(api, meeting_id, world.patient.token, "penicillin allergy", attachmentId=attachment_id).body
    api.put(
        f"/meetings/{meeting_id}/messages/{sent['messageId']}/reaction", {"emoji": "🙏"}, token=world.provider.token
    )
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    old_meeting = new_meeting(api, world, "appt_old")
    old_attachment = attach(api, old_meeting, world.patient.token, name="old.pdf")
    post(api, old_meeting, world.patient.token, "old news", attachmentId=old_attachment)
    api.delete(f"/meetings/{old_meeting}", token=world.provider.token)

    doc = api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token).body
    exported = {m["text"]: m for m in doc["content"]["messages"]}
    assert set(exported) == {"penicillin allergy", "old news"}
    assert exported["penicillin allergy"]["reactions"][0]["emoji"] == "🙏"
    files = {a["fileName"]: a for a in doc["content"]["attachments"]}
    assert set(files) == {"allergy list.pdf", "old.pdf"}
    assert requests.get(files["allergy list.pdf"]["downloadUrl"], timeout=10).content == PDF

    # Retention: the old appointment's chat is past RETENTION_DAYS_CHAT.
    query(clean_db, "UPDATE chat_messages SET created_at = now() - interval '400 days' WHERE appointment_id = 'appt_old'"
                    " RETURNING 1")  # fmt: skip
    query(clean_db, "UPDATE chat_attachments SET created_at = now() - interval '400 days'"
                    " WHERE appointment_id = 'appt_old' RETURNING 1")  # fmt: skip
    result = retention({}, LambdaContextStub())
    assert result["messages"] == 1 and result["attachments"] == 1, result
    assert (
        aws.s3.list_object_versions(Bucket=ATTACHMENTS_BUCKET, Prefix="attachments/appt_old/").get("Versions") is None
    )
    assert texts(page(api, meeting_id, world.patient.token)) == ["penicillin allergy"]

    erased = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    assert erased.status == 200, erased.body
    assert erased.body["deleted"]["messages"] == 1 and erased.body["deleted"]["attachments"] == 1
    listing = aws.s3.list_object_versions(Bucket=ATTACHMENTS_BUCKET, Prefix="attachments/")
    assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    for table in ("chat_messages", "chat_attachments", "chat_reactions", "chat_read_receipts"):
        assert query(clean_db, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0, table
    trail = json.dumps(query(clean_db, "SELECT details FROM audit_events"), default=str)
    assert "penicillin" not in trail and "allergy list" not in trail  # counts and ids only


# --- logs -----------------------------------------------------------------------------------------------------------


def test_no_message_text_or_file_name_in_any_log_line(api: Api, world: World, captured: io.StringIO, capfd,
                                                      aws: LocalAws, clean_db: str):  # fmt: skip
    secret_text, secret_name = "Hemorrhoid ointment twice daily", "Kimberly-psychiatric-referral.pdf"
    meeting_id = new_meeting(api, world)
    attachment_id = attach(api, meeting_id, world.patient.token, name=secret_name)
    post(api, meeting_id, world.patient.token, secret_text, attachmentId=attachment_id)
    post(api, meeting_id, world.patient.token, secret_text + " " + "é" * 800)  # refused: too long
    page(api, meeting_id, world.provider.token)
    tag(aws, clean_db, attachment_id, "THREATS_FOUND")
    api.get(f"/meetings/{meeting_id}/attachments/{attachment_id}", token=world.provider.token)
    api.post(f"/meetings/{meeting_id}/attachments", {"fileName": secret_name, "contentType": "text/x-secret",
                                                      "size": 5}, token=world.patient.token)  # fmt: skip
    out, err = capfd.readouterr()
    logs = captured.getvalue() + out + err
    assert "ChatMessagesPosted" in logs  # the scenario was logged
    for secret in (secret_text, "Hemorrhoid", secret_name, "psychiatric", "text/x-secret"):
        assert secret not in logs, secret


# --- round trips and AWS calls -----------------------------------------------------------------------------------
def test_each_chat_action_stays_within_its_round_trips(api: Api, world: World, runtime: Runtime, aws: LocalAws):
    meeting_id = new_meeting(api, world)
    api.deliver_events = False

    def trips(call: Callable[[], Reply]) -> tuple[int, int]:
        store = runtime.attachments_store
        before = runtime.db.round_trips, store.calls
        reply = call()
        assert reply.status < 300, reply.body
        counted = runtime.db.round_trips - before[0], store.calls - before[1]
        BUS.deliver()
        return counted

    base = f"/meetings/{meeting_id}"
    body = {"clientMessageId": "rt-1", "text": "hi"}
    posted = trips(lambda: api.post(f"{base}/messages", body, token=world.patient.token))
    retried = trips(lambda: api.post(f"{base}/messages", body, token=world.patient.token))
    message_id = page(api, meeting_id, world.patient.token).body["messages"][0]["messageId"]
    history = trips(lambda: api.get(f"{base}/messages?limit=20", token=world.provider.token))
    read = trips(lambda: api.post(f"{base}/messages/read", {"upTo": message_id}, token=world.provider.token))
    react = trips(lambda: api.put(f"{base}/messages/{message_id}/reaction", {"emoji": "👍"},
                                  token=world.provider.token))  # fmt: skip
    unreact = trips(lambda: api.delete(f"{base}/messages/{message_id}/reaction", token=world.provider.token))
    upload_link = trips(lambda: api.post(f"{base}/attachments", {"fileName": "a.pdf", "contentType": "application/pdf",
                                                                  "size": len(PDF)}, token=world.patient.token))  # fmt: skip
    attachment_id = attach(api, meeting_id, world.patient.token)
    download_link = trips(lambda: api.get(f"{base}/attachments/{attachment_id}", token=world.patient.token))

    # (database round trips, S3 calls)
    assert posted == (2, 0)  # context (authorizes, finds a retry), insert with its audit row
    assert retried == (1, 0)  # the context finds the stored message
    assert history == (1, 0)  # context + page + reactions + receipts + audit: one statement
    assert read == (2, 0) and react == (2, 0) and unreact == (2, 0)
    assert upload_link == (2, 0)  # the POST is signed locally
    assert download_link == (2, 1)  # context, audit | GetObjectTagging


# --- the local stack: presigned POST and GET over real HTTP (as curl does them) ------------------------------------
@pytest.fixture
def local_s3(clean_db: str, emulator) -> Iterator[tuple[Runtime, Any]]:
    """moto's server on a port, as `videocall serve` runs it, with the attachments bucket (no in-process mock)."""
    from videocall.local.s3 import ensure_attachments_bucket, kms_client, s3_client, start_local_s3
    from videocall.runtime import use_runtime

    server, endpoint = start_local_s3(port=0)
    try:
        s3 = s3_client(endpoint)
        key = ensure_attachments_bucket(s3, kms_client(endpoint), "videocall-local-attachments")
        settings = Settings.from_env({**os.environ, "DATABASE_URL": clean_db, "S3_ENDPOINT_URL": endpoint,
                                      "ATTACHMENTS_BUCKET": "videocall-local-attachments",
                                      "ATTACHMENTS_KMS_KEY_ARN": key})  # fmt: skip
        rt = make_runtime(settings, emulator, None, s3)
        use_runtime(rt)
        yield rt, s3
        use_runtime(None)
        rt.db.close()
    finally:
        server.stop()


def test_the_local_stack_uploads_and_downloads_over_http(local_s3, world: World):
    api = Api()
    meeting_id = new_meeting(api, world)
    created = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "photo.jpg", "contentType": "image/jpeg",
                                                                "size": 4}, token=world.patient.token).body  # fmt: skip
    assert created["upload"]["url"].startswith("http://127.0.0.1:")
    assert upload(created["upload"], b"\xff\xd8\xff\xe0", "photo.jpg").status_code == 204  # curl -F ... file=@photo.jpg
    post(api, meeting_id, world.patient.token, "photo", attachmentId=created["attachmentId"])
    link = api.get(f"/meetings/{meeting_id}/attachments/{created['attachmentId']}", token=world.provider.token).body
    got = requests.get(link["downloadUrl"], timeout=10)
    assert got.status_code == 200 and got.content == b"\xff\xd8\xff\xe0"
    assert got.headers["Content-Disposition"] == 'attachment; filename="photo.jpg"'


# --- every S3 call of the chat routes (and privacy over chat content) is in its route's aws_actions ----------
def test_every_attachments_call_is_in_its_routes_aws_actions(api: Api, world: World, aws: LocalAws, clean_db: str,
                                                             monkeypatch):  # fmt: skip
    from handlers.apply_retention import handler as retention
    from videocall.local.server import LambdaContextStub
    from videocall.routes import ROUTES_BY_NAME, SCHEDULED_JOBS

    current, used = ["?"], {}
    calls = {  # S3 client method -> the actions it needs (presigned links carry the function's credentials)
        "generate_presigned_post": ("s3:PutObject", "kms:GenerateDataKey"),
        "generate_presigned_url": ("s3:GetObject", "kms:Decrypt"),
        "get_object_tagging": ("s3:GetObjectTagging",),
        "list_object_versions": ("s3:ListBucketVersions",),
        "delete_objects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    }
    for method, actions in calls.items():
        original = getattr(aws.s3, method)

        def wrapped(*args, _original=original, _actions=actions, **kwargs):
            bucket = kwargs.get("Bucket") or (kwargs.get("Params") or {}).get("Bucket") or (args[0] if args else None)
            suffix = "@attachments" if bucket == ATTACHMENTS_BUCKET else ""
            used.setdefault(current[0], set()).update(f"{a}{suffix}" for a in _actions)
            return _original(*args, **kwargs)

        monkeypatch.setattr(aws.s3, method, wrapped)

    def as_route(route: str, call: Callable[[], Any]) -> Any:
        current[0] = route
        try:
            return call()
        finally:
            current[0] = "the test itself"

    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
    meeting_id = new_meeting(api, world)
    created = as_route("create_attachment", lambda: api.post(f"/meetings/{meeting_id}/attachments", {
        "fileName": "a.pdf", "contentType": "application/pdf", "size": len(PDF)}, token=world.patient.token)).body  # fmt: skip
    upload(created["upload"], PDF)
    as_route(
        "post_message", lambda: post(api, meeting_id, world.patient.token, "x", attachmentId=created["attachmentId"])
    )
    as_route("get_attachment", lambda: api.get(f"/meetings/{meeting_id}/attachments/{created['attachmentId']}",
                                               token=world.provider.token))  # fmt: skip
    as_route("list_messages", lambda: page(api, meeting_id, world.provider.token))
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    as_route("export_patient", lambda: api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token))
    query(clean_db, "UPDATE chat_attachments SET created_at = now() - interval '400 days' RETURNING 1")
    as_route("apply_retention", lambda: retention({}, LambdaContextStub()))
    meeting_id = new_meeting(api, world)
    attach(api, meeting_id, world.patient.token)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    as_route("erase", lambda: api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token))

    tables = {
        **{j.name: j.aws_actions for j in SCHEDULED_JOBS},
        **{n: r.aws_actions for n, r in ROUTES_BY_NAME.items()},
    }
    assert {"s3:DeleteObjectVersion@attachments", "s3:ListBucketVersions@attachments"} <= used["erase"]
    assert "s3:DeleteObjectVersion@attachments" in used["apply_retention"]
    assert "s3:GetObjectTagging@attachments" in used["export_patient"]
    assert used["get_attachment"] and used["create_attachment"] and "list_messages" not in used
    used.pop("the test itself", None)
    for route, actions in used.items():
        assert actions <= set(tables[route]), f"{route} calls {sorted(actions - set(tables[route]))}"


def test_a_link_serves_the_scanned_version_never_bytes_posted_again_under_the_key(
    api: Api, world: World, aws: LocalAws, clean_db: str, runtime: Runtime
):
    """The upload form lives a few minutes: posting it again puts new (unscanned) bytes under the same key.
    A link is signed for the version whose verdict was read."""
    meeting_id = new_meeting(api, world)
    reply = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "scan.pdf", "contentType": "application/pdf",
                                                             "size": len(PDF)}, token=world.patient.token)  # fmt: skip
    form = reply.body["upload"]
    assert upload(form, PDF).status_code == 204
    attachment_id = reply.body["attachmentId"]
    post(api, meeting_id, world.patient.token, "my scan", attachmentId=attachment_id)
    tag(aws, clean_db, attachment_id, "NO_THREATS_FOUND")
    link = api.get(f"/meetings/{meeting_id}/attachments/{attachment_id}", token=world.provider.token)
    assert link.status == 200, link.body
    assert upload(form, b"%PDF-EVIL" + b"!" * (len(PDF) - 9)).status_code == 204  # same form, new bytes
    assert requests.get(link.body["downloadUrl"], timeout=10).content == PDF


def test_invisible_format_characters_leave_file_names_and_downloads_keep_the_types_extension(
    api: Api, world: World, clean_db: str
):
    meeting_id = new_meeting(api, world)
    spoof = api.post(f"/meetings/{meeting_id}/attachments", {"fileName": "invoice\u202efdp.exe",
                                                             "contentType": "application/pdf", "size": 10},
                     token=world.patient.token)  # fmt: skip
    assert spoof.status == 201
    assert query(clean_db, "SELECT file_name FROM chat_attachments")[0]["file_name"] == "invoicefdp.exe"
    assert safe_file_name("report.pdf.html", "application/pdf") == "report.pdf.html.pdf"
    assert safe_file_name("x-ray.jpeg", "image/jpeg") == "x-ray.jpeg"
    assert safe_file_name("lab.pdf", "application/pdf") == "lab.pdf"
