"""Benchmark 1: warm latency per action through the Lambda entry point, with real PostgreSQL, a Chime
stand-in that answers at once (the emulator), production RS256 verification and tracing on.

Per action: p50 / p99; database round trips counted from the statements the server logged for the
environment's connection (log_statement=all on a second, counting environment: logging is kept out
of the timed one) and cross-checked with `Database.round_trips`; Chime calls; and the ratio of the
action's p50 to its floor, `round trips x SELECT 1 + one token verification`, both measured on the
timed environment's own connection in the same run.

An action is one row of ACTIONS: add a route by adding one `Action(...)` line.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import (
    XRAY,
    Environment,
    Identities,
    Postgres,
    Reply,
    StatementLog,
    instant,
    quiet,
    seed_users,
    summary,
)

# A request: (method, path, who ("dr" | "pat"), body, query).
Request = tuple[str, str, str, Any, str]


@dataclass(frozen=True)
class Action:
    name: str
    request: Callable[[dict[str, Any]], Request]
    ok: tuple[int, ...] = (200,)
    after: Callable[[dict[str, Any], Reply], None] | None = None
    targets: dict[str, float] = field(default_factory=dict)  # p99_ms, trips, chime_calls, ratio


def _created(state: dict[str, Any], reply: Reply) -> None:
    state["meeting"] = reply.body["meeting"]["MeetingId"]


def _batch_checked(state: dict[str, Any], reply: Reply) -> None:
    if reply.body.get("errors"):
        raise AssertionError(f"batch-join reported {len(reply.body['errors'])} per-user errors")


M = "/meetings/{meeting}"
RATIO = 4.0
ACTIONS: tuple[Action, ...] = (
    Action("create (new meeting)", lambda s: ("POST", "/meetings", "dr", {"appointmentId": s["appointment"]}, ""),
           (201,), _created, {"trips": 3, "ratio": RATIO}),
    Action("join", lambda s: ("POST", M.format(**s) + "/attendees", "pat", None, ""),
           targets={"p99_ms": 5.0, "trips": 2, "ratio": RATIO}),
    Action("rejoin (same attendee)", lambda s: ("POST", M.format(**s) + "/attendees", "pat", None, ""),
           targets={"trips": 2, "ratio": RATIO}),
    Action("state", lambda s: ("GET", M.format(**s), "pat", None, ""), targets={"trips": 2, "ratio": RATIO}),
    Action("chat: post message",
           lambda s: ("POST", M.format(**s) + "/messages", "pat", {"clientMessageId": str(uuid.uuid4()),
                                                                   "text": "Is the new dose fine?"}, ""),
           (201,), targets={"ratio": RATIO}),
    Action("chat: history page", lambda s: ("GET", M.format(**s) + "/messages", "dr", None, "limit=50"),
           targets={"ratio": RATIO}),
    Action("controls: participants", lambda s: ("GET", M.format(**s) + "/participants", "dr", None, ""),
           targets={"ratio": RATIO}),
    Action("controls: PATCH mute",
           lambda s: ("PATCH", M.format(**s) + f"/participants/{s['pat_id']}", "dr", {"audio": "off"}, ""),
           targets={"ratio": RATIO}),
    Action("controls: lobby", lambda s: ("GET", M.format(**s) + "/lobby", "dr", None, ""), targets={"ratio": RATIO}),
    Action("batch-join of 250", lambda s: ("POST", M.format(**s) + "/attendees/batch", "dr",
                                           {"userIds": s["batch"]}, ""),
           after=_batch_checked, targets={"trips": 3, "chime_calls": 3, "ratio": RATIO}),
    Action("end", lambda s: ("DELETE", M.format(**s), "dr", None, ""), targets={"trips": 2, "ratio": RATIO}),
    Action("feedback", lambda s: ("POST", M.format(**s) + "/feedback", "pat", {"rating": 4, "issues": ["audio"]}, ""),
           targets={"ratio": RATIO}),
)  # fmt: skip


class ObservedChime:
    """The emulator, with each BatchCreateAttendee's thread and overlap recorded (concurrency proof)."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.batch_threads: set[int] = set()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._emulator, name)
        if name != "batch_create_attendee":
            return target

        def observed(**params: Any) -> Any:
            with self._lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.batch_threads.add(threading.get_ident())
            try:
                time.sleep(0)  # yield: calls issued together overlap here
                return target(**params)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return observed


def run(*, iterations: int, count_iterations: int = 4, warmup: int = 5) -> dict[str, Any]:
    from videocall.core.migrate import apply_migrations
    from videocall.local.chime_emulator import ChimeEmulator

    pg = Postgres(None)
    ids = Identities()
    envs: list[Environment] = []
    try:
        apply_migrations(pg.url)
        dr = seed_users(pg.url, 1, "bench-dr", role="provider")[0]
        pat = seed_users(pg.url, 1, "bench-pat")[0]
        staff = seed_users(pg.url, 248, "bench-staff", role="provider")
        total = count_iterations + warmup + iterations
        _appointments(pg.url, total, dr["id"], pat["id"])
        chime = ObservedChime(instant(ChimeEmulator()))
        timed, counted = Environment(pg.url, chime), Environment(pg.counted_url(), chime)
        envs += [timed, counted]
        tokens = {"dr": ids.token(dr["uid"]), "pat": ids.token(pat["uid"])}
        log = StatementLog(pg.log_path)
        samples: dict[str, list[float]] = {a.name: [] for a in ACTIONS}
        trips: dict[str, dict[str, list[Any]]] = {
            a.name: {"server": [], "counter": [], "chime": [], "server_ms": []} for a in ACTIONS
        }
        failed: dict[str, str] = {}
        select1: list[float] = []
        verify: list[float] = []
        statements: dict[str, list[str]] = {}
        with ids.served(), quiet():
            for i in range(total):
                counting = i < count_iterations
                env = counted if counting else timed
                state = {"appointment": f"bench_{i}", "pat_id": pat["id"],
                         "batch": [dr["id"], pat["id"], *(u["id"] for u in staff)]}  # fmt: skip
                pid = env.backend_pid() if counting else 0
                for action in ACTIONS:
                    if action.name in failed or ("meeting" not in state and action is not ACTIONS[0]):
                        continue
                    method, path, who, body, query = action.request(state)
                    db0, chime0 = env.runtime.db.round_trips, env.runtime.chime.calls
                    if counting:
                        log.mark()
                    started = time.perf_counter()
                    reply = env.call(method, path, tokens[who], body, query)
                    elapsed = (time.perf_counter() - started) * 1000
                    try:
                        if reply.status not in action.ok:
                            raise AssertionError(f"{method} {path.split('/')[-1]}: {reply.status} {reply.body}")
                        if action.after:
                            action.after(state, reply)
                    except (AssertionError, KeyError, TypeError) as exc:
                        failed[action.name] = str(exc)[:300]
                        continue
                    if counting:
                        seen, server_ms = log.since_mark(pid)
                        trips[action.name]["server"].append(len(seen))
                        trips[action.name]["server_ms"].append(server_ms)
                        trips[action.name]["counter"].append(env.runtime.db.round_trips - db0)
                        trips[action.name]["chime"].append(env.runtime.chime.calls - chime0)
                        statements[action.name] = seen
                    elif i >= count_iterations + warmup:
                        samples[action.name].append(elapsed)
                if not counting:
                    for _ in range(4):
                        started = time.perf_counter()
                        env.runtime.db.fetch_one("SELECT 1")
                        select1.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    env.runtime.authenticator.verify(tokens["pat"])
                    verify.append((time.perf_counter() - started) * 1000)
        floor_select = summary(select1[warmup * 4 :])
        floor_verify = summary(verify[warmup:])
        rows = []
        for action in ACTIONS:
            row: dict[str, Any] = {"action": action.name, "targets": action.targets}
            if action.name in failed or not samples[action.name]:
                row["error"] = failed.get(action.name, "no samples")
                rows.append(row)
                continue
            server_trips = max(trips[action.name]["server"][1:] or trips[action.name]["server"])
            counter_trips = max(trips[action.name]["counter"][1:] or trips[action.name]["counter"])
            floor = server_trips * floor_select["p50_ms"] + floor_verify["p50_ms"]
            stats = summary(samples[action.name])
            row.update(stats)
            row.update({
                "round_trips": server_trips, "round_trips_counter": counter_trips,
                "round_trips_agree": server_trips == counter_trips,
                "chime_calls": max(trips[action.name]["chime"][1:] or trips[action.name]["chime"]),
                "floor_ms": round(floor, 3), "ratio": round(stats["p50_ms"] / floor, 2),
                "ratio_p99": round(stats["p99_ms"] / floor, 2),
                # The server's own time for the action's statements (logged on the counting environment).
                "server_ms": round(min(trips[action.name]["server_ms"][1:] or trips[action.name]["server_ms"]), 3),
                "statements": statements.get(action.name, []),
            })  # fmt: skip
            row["met"] = _met(row, action.targets)
            rows.append(row)
        return {
            "benchmark": "warm",
            "iterations": iterations,
            "floor": {"select_1": floor_select, "verify_id_token": floor_verify},
            "batch_join_concurrency": {"threads": len(chime.batch_threads), "max_in_flight": chime.max_in_flight},
            "certificate_fetches": ids.cert_fetches,
            "xray_documents": XRAY.documents,
            "actions": rows,
        }
    finally:
        for env in envs:
            env.close()
        pg.close()


def _met(row: dict[str, Any], targets: dict[str, float]) -> dict[str, bool]:
    met = {}
    if "p99_ms" in targets:
        met["p99_ms"] = row["p99_ms"] <= targets["p99_ms"]
    if "trips" in targets:
        met["trips"] = row["round_trips"] <= targets["trips"]
    if "chime_calls" in targets:
        met["chime_calls"] = row["chime_calls"] <= targets["chime_calls"]
    if "ratio" in targets:
        met["ratio"] = row["ratio"] <= targets["ratio"]
    return met


def _appointments(url: str, count: int, provider_id: str, patient_id: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)
               SELECT 'bench_' || i, %s, %s, now() FROM generate_series(0, %s - 1) i""",
            (provider_id, patient_id, count),
        )
