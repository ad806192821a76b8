"""Benchmark (not a test): a chat history page at 1,000 messages and at N messages in one run.

    .venv/bin/python benchmarks/message_history.py [--messages 10000000] [--quick] [--iterations 200]

Loads two conversations with generate_series (the small one 1,000 messages, the large one N), builds the
chat indexes after loading, keeps the data directory between runs (`--data-dir`, default
.videocall/bench-chat: a second run with the same N loads nothing), then measures, through the Lambda
entry point (the same resolver, handler and runtime as AWS), the newest page, a page scrolled back to
the middle of the history (`before=`) and a poll from the middle (`after=`), each at both sizes; prints
p50/p95, the large/small ratio, the database round trips per page and the EXPLAIN (ANALYZE) plan of the
page statement on the large conversation (an index scan on (appointment_id, seq), never a sequential
scan of chat_messages), and writes everything to a JSON file (`--out`).

Uses the embedded PostgreSQL 16 (pgserver), or DATABASE_URL when set (then `--data-dir` is unused).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
os.environ.update({"STAGE": "test", "FIREBASE_PROJECT_ID": "videocall-bench", "FIREBASE_AUTH_EMULATOR_HOST": "x:1",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "WARNING"})  # fmt: skip

SMALL = 1_000
# What the migration builds on chat_messages besides its primary key and the idempotency constraint: dropped
# before a load and built after it (one sort each instead of N index insertions).
INDEXES = {
    "chat_messages_conversation_seq": "CREATE UNIQUE INDEX chat_messages_conversation_seq ON chat_messages "
    "(appointment_id, seq)",
    "chat_messages_attachment": "CREATE UNIQUE INDEX chat_messages_attachment ON chat_messages (attachment_id) "
    "WHERE attachment_id IS NOT NULL",
    "chat_messages_created_at": "CREATE INDEX chat_messages_created_at ON chat_messages (created_at)",
    "chat_messages_reply_to": "CREATE INDEX chat_messages_reply_to ON chat_messages (reply_to) "
    "WHERE reply_to IS NOT NULL",
}


def database(args: argparse.Namespace) -> tuple[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    import pgserver

    directory = Path(args.data_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(directory))  # kept: the next run reuses the loaded data
    return server.get_uri(), server


def ensure_people(conn: Any) -> dict[str, str]:
    ids = {}
    for uid, role in (("bench-dr", "provider"), ("bench-pat", "patient")):
        row = conn.execute(
            "INSERT INTO users (firebase_uid, role, display_name) VALUES (%s, %s, %s) ON CONFLICT (firebase_uid)"
            " DO UPDATE SET role = EXCLUDED.role RETURNING id::text", (uid, role, f"Bench {role}"),
        ).fetchone()  # fmt: skip
        ids[uid] = row[0]
    return ids


def ensure_conversation(conn: Any, appointment: str, people: dict[str, str], n: int, prefix: str) -> str:
    """The appointment, its (active) meeting, both attendees, and n messages; loads only what is missing.
    Returns the meeting id."""
    conn.execute(
        "INSERT INTO appointments (id, provider_id, patient_id, scheduled_at, status) VALUES (%s, %s, %s, now(),"
        " 'in_progress') ON CONFLICT (id) DO NOTHING", (appointment, people["bench-dr"], people["bench-pat"]),
    )  # fmt: skip
    meeting_id = f"{prefix}0000-0000-4000-8000-000000000001"
    session = conn.execute(
        """INSERT INTO video_call_sessions (appointment_id, generation, client_request_token, meeting_id, status,
                                            created_by)
           VALUES (%s, 1, %s, %s, 'active', %s)
           ON CONFLICT (meeting_id) DO UPDATE SET status = 'active' RETURNING id::text""",
        (appointment, f"{appointment}-g1", meeting_id, people["bench-dr"]),
    ).fetchone()[0]
    for uid in people.values():
        conn.execute(
            "INSERT INTO meeting_attendees (session_id, user_id, attendee_id, external_user_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING", (session, uid, f"att-{uid[:8]}", f"u_{uid[:8]}"),
        )  # fmt: skip
    row = conn.execute("SELECT last_seq FROM chat_conversations WHERE appointment_id = %s", (appointment,)).fetchone()
    if row and row[0] == n:
        return meeting_id
    started = time.perf_counter()
    conn.execute("DELETE FROM chat_messages WHERE appointment_id = %s", (appointment,))
    # last_seq = n marks a finished load (set at the end): an interrupted load is redone by the next run.
    conn.execute("INSERT INTO chat_conversations (appointment_id, last_seq) VALUES (%s, 0)"
                 " ON CONFLICT (appointment_id) DO UPDATE SET last_seq = 0", (appointment,))  # fmt: skip
    for name in INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute("SET session_replication_role = replica")  # generated rows are consistent: no per-row FK checks
    conn.execute("SET synchronous_commit = off")
    batch = 1_000_000
    for start in range(1, n + 1, batch):
        end = min(n, start + batch - 1)
        # Sequential ids for the load (random UUIDs would scatter N insertions over the primary key).
        conn.execute(
            f"""INSERT INTO chat_messages (id, appointment_id, seq, session_id, sender_id, client_message_id, text,
                                          created_at)
                SELECT ('{prefix}' || lpad(to_hex(g >> 48), 4, '0') || '-' || lpad(to_hex((g >> 32) & 65535), 4, '0')
                        || '-4000-8000-' || lpad(to_hex(g & 281474976710655), 12, '0'))::uuid,
                       %(appointment)s, g, %(session)s::uuid,
                       CASE WHEN g %% 2 = 0 THEN %(dr)s::uuid ELSE %(pat)s::uuid END,
                       'b-' || g, 'message number ' || g || ' of the benchmark conversation',
                       now() - make_interval(secs => (%(n)s - g))
                  FROM generate_series(%(start)s::bigint, %(end)s::bigint) g""",
            {"appointment": appointment, "session": session, "dr": people["bench-dr"], "pat": people["bench-pat"],
             "n": n, "start": start, "end": end},
        )  # fmt: skip
        print(f"  {appointment}: loaded {end:,} of {n:,} messages", flush=True)
    conn.execute("SET session_replication_role = origin")
    conn.execute("SET maintenance_work_mem = '512MB'")
    for statement in INDEXES.values():
        conn.execute(statement)  # index after loading
    conn.execute("VACUUM ANALYZE chat_messages")
    conn.execute("UPDATE chat_conversations SET last_seq = %s WHERE appointment_id = %s", (n, appointment))
    print(f"  {appointment}: {n:,} messages loaded and indexed in {time.perf_counter() - started:.1f} s", flush=True)
    return meeting_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000_000, help="messages in the large conversation")
    parser.add_argument("--quick", action="store_true", help="a small large conversation (20,000 messages)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--limit", type=int, default=50, help="messages per page")
    parser.add_argument("--data-dir", default=str(ROOT / ".videocall" / "bench-chat"))
    parser.add_argument("--out", default=None, help="JSON results (default: <data-dir>/message_history-<N>.json)")
    args = parser.parse_args()
    large = 20_000 if args.quick else args.messages

    import psycopg
    from videocall.core.migrate import apply_migrations
    from videocall.core.settings import Settings
    from videocall.http import build_resolver, make_lambda_handler
    from videocall.local.devtools import emulator_id_token
    from videocall.local.server import LambdaContextStub, rest_event
    from videocall.runtime import build_runtime, use_runtime

    url, server = database(args)
    apply_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        people = ensure_people(conn)
        meetings = {
            "small": ensure_conversation(conn, "bench_chat_small", people, SMALL, "aaaa"),
            "large": ensure_conversation(conn, "bench_chat_large", people, large, "bbbb"),
        }
        sizes = {"small": SMALL, "large": large}

    runtime = build_runtime(Settings.from_env({**os.environ, "DATABASE_URL": url}))
    use_runtime(runtime)
    handler = make_lambda_handler(build_resolver())
    token = emulator_id_token("bench-dr", "videocall-bench")

    def page(meeting_id: str, query: str = "") -> dict[str, Any]:
        event = rest_event("GET", f"/meetings/{meeting_id}/messages", {"x-firebase-token": token}, None, query)
        result = handler(event, LambdaContextStub())
        assert result["statusCode"] == 200, result
        return dict(json.loads(result["body"]))

    def cursor_at(size: str, seq: int) -> str:
        return runtime.chat.cursors.encode(f"bench_chat_{size}", seq)

    kinds = {
        "newest page": lambda size: "",
        "scroll back to the middle (before=)": lambda size: f"before={cursor_at(size, sizes[size] // 2)}",
        "poll from the middle (after=)": lambda size: f"after={cursor_at(size, sizes[size] // 2)}",
    }
    results: dict[str, Any] = {"messages": {"small": SMALL, "large": large}, "limit": args.limit,
                               "iterations": args.iterations, "pages": {}}  # fmt: skip
    print(f"\nhistory page of {args.limit} messages, {args.iterations} iterations each, through the Lambda entry")
    print(f"{'page':38} {'conversation':>14} {'p50 ms':>8} {'p95 ms':>8} {'db trips':>9}")
    for kind, query_for in kinds.items():
        row: dict[str, Any] = {}
        for size in ("small", "large"):
            query = "&".join(q for q in (query_for(size), f"limit={args.limit}") if q)
            page(meetings[size], query)  # warm
            samples, trips = [], set()
            for _ in range(args.iterations):
                before = runtime.db.round_trips
                started = time.perf_counter()
                body = page(meetings[size], query)
                samples.append((time.perf_counter() - started) * 1000)
                trips.add(runtime.db.round_trips - before)
                assert len(body["messages"]) == args.limit, len(body["messages"])
            samples.sort()
            row[size] = {"p50_ms": statistics.median(samples), "p95_ms": samples[int(len(samples) * 0.95) - 1],
                         "round_trips": sorted(trips)}  # fmt: skip
            print(f"{kind:38} {sizes[size]:>14,} {row[size]['p50_ms']:8.2f} {row[size]['p95_ms']:8.2f} "
                  f"{','.join(map(str, sorted(trips))):>9}")  # fmt: skip
        row["ratio_p50_large_over_small"] = row["large"]["p50_ms"] / row["small"]["p50_ms"]
        print(f"{'':38} {'ratio':>14} {row['ratio_p50_large_over_small']:8.2f}")
        results["pages"][kind] = row

    # The plan of the page statement itself on the large conversation (rolled back: it writes its audit row).
    captured: dict[str, Any] = {}
    original = runtime.db.read_one

    def capture(sql: str, params: Any = None) -> Any:
        captured.update(sql=sql, params=params)
        return original(sql, params)

    runtime.db.read_one = capture  # type: ignore[method-assign]
    plans = {}
    for kind in ("newest page", "scroll back to the middle (before=)"):
        runtime.chat.history("bench-dr", meetings["large"], None, limit=args.limit,
                             before=cursor_at("large", large // 2) if "before" in kind else None)  # fmt: skip
        with psycopg.connect(url) as conn:
            lines = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + captured["sql"], captured["params"])]
            conn.rollback()
        plans[kind] = lines
    runtime.db.read_one = original  # type: ignore[method-assign]
    plan = plans["newest page"]
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the page statement, newest page, large conversation:")
    print("\n".join(plan))
    text = "\n".join(line for lines in plans.values() for line in lines)
    index_scan = "chat_messages_conversation_seq" in text
    seq_scan = "Seq Scan on chat_messages" in text
    print(f"\nindex scan on chat_messages_conversation_seq: {index_scan}; sequential scan of chat_messages: {seq_scan}")
    results["explain"] = plans
    results["index_scan"] = index_scan
    results["sequential_scan"] = seq_scan
    out = Path(args.out or Path(args.data_dir) / f"message_history-{large}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")
    runtime.db.close()
    if not index_scan or seq_scan:
        raise SystemExit("the page statement does not use the (appointment_id, seq) index")
    del server  # the embedded server keeps running for the next run (pgserver stops it at exit)


if __name__ == "__main__":
    main()
