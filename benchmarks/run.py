"""Benchmarks (not tests): per-action latency through the Lambda entry point, database round trips
and Chime calls per action, and the cold-start import time of a handler module.

    .venv/bin/python benchmarks/run.py [--iterations 200]

Uses the embedded PostgreSQL (or DATABASE_URL) and the Chime emulator, so it measures our code and
the database, not Chime's network latency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.update({"STAGE": "test", "FIREBASE_PROJECT_ID": "videocall-bench", "FIREBASE_AUTH_EMULATOR_HOST": "x:1",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "WARNING"})  # fmt: skip


def cold_import_ms(module: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=os.environ, cwd=ROOT)  # noqa: S603
        times.append((time.perf_counter() - started) * 1000)
    baseline = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append((time.perf_counter() - started) * 1000)
    return statistics.median(times) - statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()

    import pgserver
    import psycopg
    from videocall.core.migrate import apply_migrations
    from videocall.core.settings import Settings
    from videocall.http import build_resolver, make_lambda_handler
    from videocall.local.chime_emulator import ChimeEmulator
    from videocall.local.devtools import emulator_id_token, seed
    from videocall.local.server import LambdaContextStub, rest_event
    from videocall.runtime import build_runtime, use_runtime

    url = os.environ.get("DATABASE_URL")
    server = None
    if not url:
        server = pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="delete")
        url = server.get_uri()
    apply_migrations(url)
    people = {p["key"]: p for p in seed(url, json.loads((ROOT / "dev/seed.json").read_text()), "videocall-bench")}
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(args.iterations):
            conn.execute(
                "INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT DO NOTHING",
                (f"bench_{i}", people["dr_lee"]["id"], people["pat_kim"]["id"]),
            )
    runtime = build_runtime(Settings.from_env({**os.environ, "DATABASE_URL": url}), chime_client=ChimeEmulator())
    use_runtime(runtime)
    handler = make_lambda_handler(build_resolver())
    dr = emulator_id_token("dev-dr-lee", "videocall-bench")
    pat = emulator_id_token("dev-pat-kim", "videocall-bench")

    def call(method: str, path: str, token: str, body: dict | None = None) -> dict:
        event = rest_event(method, path, {"x-firebase-token": token}, json.dumps(body) if body else None)
        result = handler(event, LambdaContextStub())
        assert result["statusCode"] < 300, result
        return json.loads(result["body"])

    samples: dict[str, list[float]] = {}
    counts: dict[str, tuple[int, int]] = {}

    def measure(name: str, fn):  # type: ignore[no-untyped-def]
        db, chime = runtime.db.round_trips, runtime.chime.calls
        started = time.perf_counter()
        out = fn()
        samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        counts[name] = (runtime.db.round_trips - db, runtime.chime.calls - chime)
        return out

    for i in range(args.iterations):
        appt = f"bench_{i}"
        created = measure("create (new meeting)", lambda a=appt: call("POST", "/chime-meeting-token", dr,
                          {"action": "create", "appointmentId": a}))  # fmt: skip
        mid = created["meeting"]["MeetingId"]
        measure("join", lambda m=mid: call("POST", f"/meetings/{m}/attendees", pat))
        measure("rejoin (same attendee)", lambda m=mid: call("POST", f"/meetings/{m}/attendees", pat))
        measure("view", lambda m=mid: call("GET", f"/meetings/{m}", pat))
        measure("batch-join (3 users)", lambda m=mid: call("POST", f"/meetings/{m}/attendees/batch", dr, {
            "userIds": [people[k]["id"] for k in ("nurse_ode", "interp_ruiz", "pat_other")]}))  # fmt: skip
        measure("end", lambda m=mid: call("DELETE", f"/meetings/{m}", dr))

    print(f"{'action':28} {'p50 ms':>8} {'p95 ms':>8} {'db trips':>9} {'chime calls':>12}")
    for name, values in samples.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"{name:28} {statistics.median(values):8.2f} {p95:8.2f} {counts[name][0]:9d} {counts[name][1]:12d}")
    print(f"cold import of handlers.create_meeting: {cold_import_ms('handlers.create_meeting'):.0f} ms "
          "(over a bare interpreter start)")  # fmt: skip
    runtime.db.close()
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
