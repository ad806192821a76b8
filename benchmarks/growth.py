"""Benchmark 3: growth. The same requests against a database holding `size` sessions (and as many
messages, transcript turns and audit events) and against an almost empty one, in the same run on the
same server, interleaved request by request; the ratio big/small of each path's p50 is the figure.

The big database is loaded with generate_series (foreign-key triggers off, secondary indexes dropped
for the load and built after it, then ANALYZE) in a data directory kept between runs
(`.benchmarks/pgdata-growth`, git-ignored): a second run at the same size starts measuring at once.
Every statement of every measured path is EXPLAINed (ANALYZE, BUFFERS) on the big database; the
report lists any Seq Scan.

Loaded, for size N: N appointments, N ended sessions with 2 attendees each, N audit events;
N/10 users (one in ten a provider); N messages in N/10 conversations; N transcript turns in N/10
transcripts.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from harness import ROOT, Environment, Identities, Postgres, instant, quiet, seed_users, summary

DATA_DIR = ROOT / ".benchmarks" / "pgdata-growth"
FIXTURE_MEETING = "9f0c2a4e-1b7d-4c3e-8a5f-000000000001"
LOADED_TABLES = (
    "users", "appointments", "video_call_sessions", "meeting_attendees", "audit_events", "chat_conversations",
    "chat_messages", "call_transcripts", "call_transcript_segments",
)  # fmt: skip

# One uuid per (namespace digit, i), in increasing order: index inserts append instead of splitting pages.
_ID = "('{ns}' || lpad(to_hex({i}), 31, '0'))::uuid"


def _load_sql(n: int) -> list[str]:
    users = max(1000, n // 10)
    groups = users // 10  # user 10k is a provider; 10k+1..10k+9 are patients
    provider = f"(10 * ((i % {groups}) + 1))"
    patient = f"(10 * (i % {groups}) + 1 + (i % 9))"
    uid = lambda expr: _ID.format(ns="1", i=expr)  # noqa: E731
    sid = lambda expr: _ID.format(ns="2", i=expr)  # noqa: E731
    conversations = max(1, n // 10)
    transcripts = max(1, n // 10)
    return [
        f"""INSERT INTO users (id, firebase_uid, role, display_name)
            SELECT {uid("i")}, 'load-' || i, CASE WHEN i % 10 = 0 THEN 'provider' ELSE 'patient' END, 'Load ' || i
              FROM generate_series(1, {users}) i""",
        f"""INSERT INTO appointments (id, provider_id, patient_id, scheduled_at, status)
            SELECT 'load_' || i, {uid(provider)}, {uid(patient)}, now() - i * interval '1 minute', 'completed'
              FROM generate_series(1, {n}) i""",
        f"""INSERT INTO video_call_sessions (id, appointment_id, generation, client_request_token, meeting_id,
                external_meeting_id, status, media_region, media_placement, created_by, ended_by, created_at,
                updated_at, ended_at)
            SELECT {sid("i")}, 'load_' || i, 1, 'load_' || i || '-g1', {sid("i")}::text, 'load_' || i, 'ended',
                   'eu-central-1', '{{"AudioHostUrl": "h.k.m3.ec1.app.chime.aws:3478"}}', {uid(provider)},
                   {uid(provider)}, now() - i * interval '1 minute', now() - i * interval '1 minute',
                   now() - i * interval '1 minute' + interval '20 minutes'
              FROM generate_series(1, {n}) i""",
        f"""INSERT INTO meeting_attendees (session_id, user_id, attendee_id, external_user_id)
            SELECT {sid("i")}, CASE WHEN k = 0 THEN {uid(provider)} ELSE {uid(patient)} END,
                   'att-' || i || '-' || k, 'u_' || i || '_' || k
              FROM generate_series(1, {n}) i, generate_series(0, 1) k""",
        f"""INSERT INTO audit_events (occurred_at, actor_user_id, action, outcome, appointment_id, patient_id,
                session_id, meeting_id)
            SELECT now() - i * interval '1 minute', {uid(provider)}, 'meeting.join', 'allowed', 'load_' || i,
                   {uid(patient)}, {sid("i")}, {sid("i")}::text
              FROM generate_series(1, {n}) i""",
        f"""INSERT INTO chat_conversations (appointment_id, last_seq)
            SELECT 'load_' || i, 10 FROM generate_series(1, {conversations}) i""",
        f"""INSERT INTO chat_messages (id, appointment_id, seq, session_id, sender_id, client_message_id, text,
                created_at)
            SELECT {_ID.format(ns="3", i="j")}, 'load_' || c, s, {sid("c")},
                   {uid(patient.replace("i", "c"))}, 'm' || j, 'Loaded message number ' || j,
                   now() - j * interval '1 second'
              FROM generate_series(1, {n}) j, LATERAL (SELECT (j - 1) / 10 + 1 AS c, (j - 1) % 10 + 1 AS s) x
             WHERE x.c <= {conversations}""",
        f"""INSERT INTO call_transcripts (session_id, meeting_id, appointment_id, language, people_heard)
            SELECT {sid("i")}, {sid("i")}::text, 'load_' || i, 'en-US', 2 FROM generate_series(1, {transcripts}) i""",
        f"""INSERT INTO call_transcript_segments (session_id, sequence, meeting_id, start_ms, end_ms,
                speaker_user_id, speaker_role, text, confidence)
            SELECT {sid("t")}, s, {sid("t")}::text, s * 4000, s * 4000 + 3500, {uid(patient.replace("i", "t"))},
                   'patient', 'Loaded turn ' || j, 0.93
              FROM generate_series(1, {n}) j, LATERAL (SELECT (j - 1) / 10 + 1 AS t, (j - 1) % 10 + 1 AS s) x
             WHERE x.t <= {transcripts}""",
    ]


def _database(pg: Postgres, name: str) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg.url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(pg.url, dbname=name)


def _ensure_loaded(url: str, size: int, log: list[str]) -> dict[str, Any]:
    """Load `size` rows unless this database already holds exactly that load; returns how long it took."""
    import psycopg
    from videocall.core.migrate import apply_migrations

    apply_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_growth_load (size bigint NOT NULL, loaded_at timestamptz)")
        row = conn.execute("SELECT size FROM bench_growth_load").fetchone()
        if row and row[0] == size:
            return {"size": size, "reused": True}
        started = time.perf_counter()
        conn.execute("TRUNCATE bench_growth_load")
        conn.execute(f"TRUNCATE {', '.join(LOADED_TABLES)} CASCADE")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET session_replication_role = replica")  # no foreign-key triggers while loading
        indexes = conn.execute(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                 FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                WHERE t.relname = ANY(%s)
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
            (list(LOADED_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for statement in _load_sql(size):
            t = time.perf_counter()
            conn.execute(statement)
            log.append(f"{statement.split()[2]}: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        for _, definition in indexes:
            conn.execute(definition)
        log.append(f"indexes: {time.perf_counter() - t:.1f} s")
        conn.execute("SET session_replication_role = origin")
        conn.execute("VACUUM ANALYZE")
        conn.execute("INSERT INTO bench_growth_load VALUES (%s, now())", (size,))
        return {"size": size, "reused": False, "load_seconds": round(time.perf_counter() - started, 1)}


def _fixture(url: str) -> dict[str, Any]:
    """The same people and ended, chatted, transcribed meeting in both databases (idempotent)."""
    import psycopg

    dr = seed_users(url, 1, "bench-dr", role="provider")[0]
    pat = seed_users(url, 1, "bench-pat")[0]
    staff = seed_users(url, 248, "bench-staff", role="provider")
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM appointments WHERE id = 'g_fixture'").fetchone():
            conn.execute(
                """WITH a AS (INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)
                              VALUES ('g_fixture', %(dr)s, %(pat)s, now()) RETURNING id),
                        s AS (INSERT INTO video_call_sessions (appointment_id, generation, client_request_token,
                                  meeting_id, external_meeting_id, status, media_region, media_placement,
                                  created_by, ended_at, transcription_enabled, transcription_language)
                              SELECT id, 1, 'g_fixture-g1', %(m)s, 'g_fixture', 'ended', 'eu-central-1', '{}',
                                     %(dr)s, now(), true, 'en-US' FROM a RETURNING id),
                        att AS (INSERT INTO meeting_attendees (session_id, user_id, attendee_id, external_user_id)
                                SELECT s.id, u, 'fx-' || u, 'u_fx' FROM s, unnest(ARRAY[%(dr)s, %(pat)s]::uuid[]) u),
                        conv AS (INSERT INTO chat_conversations (appointment_id, last_seq)
                                 SELECT id, 60 FROM a RETURNING appointment_id),
                        msg AS (INSERT INTO chat_messages (appointment_id, seq, session_id, sender_id,
                                    client_message_id, text)
                                SELECT conv.appointment_id, g, s.id,
                                       CASE WHEN g %% 2 = 0 THEN %(dr)s ELSE %(pat)s END::uuid,
                                       'fx' || g, 'Fixture message ' || g
                                  FROM conv, s, generate_series(1, 60) g),
                        tr AS (INSERT INTO call_transcripts (session_id, meeting_id, appointment_id, language,
                                   people_heard)
                               SELECT s.id, %(m)s, 'g_fixture', 'en-US', 2 FROM s RETURNING session_id)
                   INSERT INTO call_transcript_segments (session_id, sequence, meeting_id, start_ms, end_ms,
                       speaker_user_id, speaker_role, text, confidence)
                   SELECT tr.session_id, g, %(m)s, g * 4000, g * 4000 + 3500,
                          CASE WHEN g %% 2 = 0 THEN %(dr)s ELSE %(pat)s END::uuid,
                          CASE WHEN g %% 2 = 0 THEN 'provider' ELSE 'patient' END, 'Fixture turn ' || g, 0.9
                     FROM tr, generate_series(1, 40) g""",
                {"dr": dr["id"], "pat": pat["id"], "m": FIXTURE_MEETING},
            )
    return {"dr": dr, "pat": pat, "staff": staff}


def _appointments(url: str, run: str, count: int, dr: str, pat: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)
               SELECT %s || i, %s, %s, now() FROM generate_series(1, %s) i""",
            (f"g_{run}_", dr, pat, count),
        )


# The measured paths: (name, request builder, expected status). `m` is the fresh meeting of the iteration.
PATHS: tuple[tuple[str, Any, int], ...] = (
    ("join", lambda s: ("POST", f"/meetings/{s['m']}/attendees", "pat", None, ""), 200),
    ("state", lambda s: ("GET", f"/meetings/{s['m']}", "pat", None, ""), 200),
    ("batch-join of 250", lambda s: ("POST", f"/meetings/{s['m']}/attendees/batch", "dr", {"userIds": s["batch"]},
                                     ""), 200),
    ("chat: history page", lambda s: ("GET", f"/meetings/{FIXTURE_MEETING}/messages", "dr", None, "limit=50"), 200),
    ("transcript page", lambda s: ("GET", f"/meetings/{FIXTURE_MEETING}/transcript", "dr", None, "limit=50"), 200),
)  # fmt: skip


def run(*, size: int, iterations: int, data_dir: Any = None, warmup: int = 3) -> dict[str, Any]:
    from videocall.local.chime_emulator import ChimeEmulator

    pg = Postgres(data_dir or DATA_DIR, keep=True)
    ids = Identities()
    load_log: list[str] = []
    envs: dict[str, Environment] = {}
    try:
        urls = {"small": _database(pg, "growth_small"), "big": _database(pg, f"growth_{size}")}
        load = {"small": _ensure_loaded(urls["small"], 0, load_log), "big": _ensure_loaded(urls["big"], size, load_log)}
        people = {k: _fixture(u) for k, u in urls.items()}
        run_id = uuid.uuid4().hex[:8]
        total = warmup + iterations
        for k, u in urls.items():
            _appointments(u, run_id, total, people[k]["dr"]["id"], people[k]["pat"]["id"])
        chime = instant(ChimeEmulator())
        envs = {k: Environment(u, chime) for k, u in urls.items()}
        tokens = {"dr": ids.token("bench-dr-1"), "pat": ids.token("bench-pat-1")}
        samples: dict[str, dict[str, list[float]]] = {p[0]: {"small": [], "big": []} for p in PATHS}
        errors: dict[str, str] = {}
        captured: dict[str, list[tuple[str, Any]]] = {}
        with ids.served(), quiet():
            for i in range(total):
                for which in ("small", "big") if i % 2 == 0 else ("big", "small"):
                    env = envs[which]
                    p = people[which]
                    created = env.call("POST", "/meetings", tokens["dr"], {"appointmentId": f"g_{run_id}_{i + 1}"})
                    if created.status != 201:
                        raise RuntimeError(f"create answered {created.status}: {created.body}")
                    state = {"m": created.body["meeting"]["MeetingId"],
                             "batch": [p["dr"]["id"], p["pat"]["id"], *(u["id"] for u in p["staff"])]}  # fmt: skip
                    for name, request, status in PATHS:
                        if name in errors:
                            continue
                        method, path, who, body, query = request(state)
                        spy = _Spy(env) if (which == "big" and i == total - 1) else None
                        started = time.perf_counter()
                        reply = env.call(method, path, tokens[who], body, query)
                        elapsed = (time.perf_counter() - started) * 1000
                        if spy is not None:
                            captured[name] = spy.stop()
                        if reply.status != status:
                            errors[name] = f"{reply.status}: {str(reply.body)[:200]}"
                        elif i >= warmup:
                            samples[name][which].append(elapsed)
                    env.call("DELETE", f"/meetings/{state['m']}", tokens["dr"])
        plans = _explain(urls["big"], captured)
        rows: list[dict[str, Any]] = []
        for name, _, _ in PATHS:
            if name in errors:
                rows.append({"path": name, "error": errors[name]})
                continue
            small, big = summary(samples[name]["small"]), summary(samples[name]["big"])
            ratio = round(big["p50_ms"] / small["p50_ms"], 2)
            seq = sorted({s for plan in plans.get(name, []) for s in plan["seq_scans"]})
            # A violation is a Seq Scan on a table the load filled; tables it leaves empty are listed apart.
            loaded = [s for s in seq if s.split()[0] in LOADED_TABLES]
            rows.append({"path": name, "small": small, "big": big, "ratio": ratio, "seq_scans": loaded,
                         "seq_scans_unloaded_tables": [s for s in seq if s not in loaded],
                         "met": {"ratio": ratio <= 1.1, "no_seq_scan": not loaded}})  # fmt: skip
        return {"benchmark": "growth", "size": size, "iterations": iterations, "load": load, "load_log": load_log,
                "data_dir": str(pg.data_dir), "paths": rows, "explain": plans}  # fmt: skip
    finally:
        for env in envs.values():
            env.close()
        pg.close()


class _Spy:
    """Records the statements one request sends through the environment's Database."""

    def __init__(self, env: Environment) -> None:
        self._db = env.runtime.db
        self.statements: list[tuple[str, Any]] = []
        for method in ("fetch_one", "fetch_all", "execute"):
            original = getattr(self._db, method)
            setattr(self._db, method, self._wrap(original))

    def _wrap(self, original: Any) -> Any:
        def spied(sql: str, params: Any = None) -> Any:
            self.statements.append((sql, params))
            return original(sql, params)

        return spied

    def stop(self) -> list[tuple[str, Any]]:
        for method in ("fetch_one", "fetch_all", "execute"):
            self._db.__dict__.pop(method, None)
        return self.statements


def _explain(url: str, captured: dict[str, list[tuple[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement, in a transaction rolled back (writes are undone)."""
    import psycopg

    out: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(url) as conn:
        for name, statements in captured.items():
            for sql, params in statements:
                try:
                    rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
                    plan = "\n".join(r[0] for r in rows)
                finally:
                    conn.rollback()
                scans = re.findall(r"Seq Scan on (\w+)", plan)
                sizes = {}
                for table in set(scans):
                    found = conn.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table,)
                    ).fetchone()
                    sizes[table] = found[0] if found else 0
                    conn.rollback()
                out.setdefault(name, []).append({
                    "statement": " ".join(sql.split())[:200], "plan": plan,
                    # A scan of a table the load left (nearly) empty is the planner's right choice there;
                    # listed with its size so the reader can tell.
                    "seq_scans": [f"{t} (~{sizes[t]} rows)" for t in sorted(set(scans))],
                })  # fmt: skip
    return out
