"""Benchmark 5 (not a test): `videocall serve` over HTTP at 1, 20 and 50 concurrent clients.

    .venv/bin/python benchmarks/http_load.py [--seconds 10] [--quick] [--threads 8]
        [--minute | --duration 60] [--out build/benchmarks/http_load.json]

The server is the real `videocall serve` in its own process (waitress, one runtime and database
connection per worker thread) on the embedded PostgreSQL (or DATABASE_URL), seeded from
dev/seed.json with emulator tokens. Each client is a thread with its own keep-alive connection, as an
app has, sending one request after another for the run's seconds:

- create: everyone creates the same appointment's meeting (POST /meetings; one 201, then 200s);
- get: the meeting's state (GET /meetings/{id});
- join: join the meeting (POST /meetings/{id}/attendees; the same attendee again for each person);
- get + stalled: one client's GETs while another connection has sent half a request and stops.

Per row: requests/s, p50/p99 latency seen by the client, errors (connection resets and refusals,
5xx, any status not expected). Ratios: throughput at 20 and 50 clients over 1 client's, first in the
table. --minute (or --duration S): then the sustained run, 20 clients reading for a minute.
The clients share the machine with the server (2 cores here): the figures are the server's floor.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "videocall-local"  # what `videocall serve` verifies emulator tokens against
LEVELS = (1, 20, 50)
EXPECTED = {"create": {200, 201}, "get": {200}, "join": {200}, "get + stalled": {200}}


class Target:
    def __init__(self, port: int) -> None:
        self.port = port

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def start_server(url: str, threads: int, log: Path) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "DATABASE_URL": url, "FIREBASE_PROJECT_ID": PROJECT, "PYTHONUNBUFFERED": "1",
           "POWERTOOLS_LOG_LEVEL": "WARNING"}  # fmt: skip
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "videocall.cli", "serve", "--port", "0", "--s3-port", "0", "--threads", str(threads)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if '"listening"' in line:
            port = int(json.loads(line)["listening"].rsplit(":", 1)[1])
            break
    else:
        raise SystemExit(f"videocall serve did not start; see {log}")
    # The server logs a line per request: drain them so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    return process, port


def run(target: Target, clients: int, seconds: float, request: Any, expected: set[int]) -> dict[str, Any]:
    """`clients` threads, each sending request(conn, i) back to back until the deadline."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter[str]] = [Counter() for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        conn = target.connection()
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            started = time.perf_counter()
            try:
                status = request(conn, i)
                statuses[i][str(status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                statuses[i][type(exc).__name__] += 1
                conn.close()
                conn = target.connection()
                continue
            latencies[i].append((time.perf_counter() - started) * 1000)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    every = sorted(x for values in latencies for x in values)
    counts: Counter[str] = sum(statuses, Counter())
    errors = sum(n for status, n in counts.items() if not (status.isdigit() and int(status) in expected))
    return {
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(every),
        "requests_per_second": round(len(every) / elapsed, 1),
        "p50_ms": round(statistics.median(every), 2) if every else None,
        "p99_ms": round(every[max(0, int(len(every) * 0.99) - 1)], 2) if every else None,
        "errors": errors,
        "server_errors_5xx": sum(n for status, n in counts.items() if status.startswith("5")),
        "statuses": dict(counts),
    }


def send(conn: http.client.HTTPConnection, method: str, path: str, token: str, body: Any = None) -> int:
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"x-firebase-token": token, "Content-Type": "application/json"})  # fmt: skip
    response = conn.getresponse()
    response.read()
    return response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and number of clients")
    parser.add_argument("--quick", action="store_true", help="3 s per row")
    parser.add_argument("--threads", type=int, default=8, help="the server's worker threads")
    parser.add_argument("--minute", action="store_true", help="also 20 clients reading for 60 s")
    parser.add_argument("--duration", type=float, help="also 20 clients reading for this many seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "benchmarks" / "http_load.json")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    sustained = args.duration or (60.0 if args.minute else None)

    import pgserver
    import psycopg
    from videocall.core.migrate import apply_migrations
    from videocall.local.devtools import emulator_id_token, seed

    url = os.environ.get("DATABASE_URL")
    pg = None
    if not url:
        pg = pgserver.get_server(tempfile.mkdtemp(), cleanup_mode="delete")
        url = pg.get_uri()
    apply_migrations(url)
    people = {p["key"]: p for p in seed(url, json.loads((ROOT / "dev/seed.json").read_text()), PROJECT)}
    dr, pat = people["dr_lee"], people["pat_kim"]
    tokens = (emulator_id_token("dev-dr-lee", PROJECT), emulator_id_token("dev-pat-kim", PROJECT))
    stamp = time.strftime("%H%M%S")
    appointments = [f"load_{stamp}_{name}" for name in ("warm", "view", *(f"create{n}" for n in LEVELS))]
    with psycopg.connect(url, autocommit=True) as conn:
        for appointment in appointments:
            conn.execute(
                "INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)"
                " VALUES (%s, %s, %s, now()) ON CONFLICT DO NOTHING",
                (appointment, dr["id"], pat["id"]),
            )

    log = args.out.with_suffix(".serve.log")  # the server's stderr
    log.parent.mkdir(parents=True, exist_ok=True)
    process, port = start_server(url, args.threads, log)
    target = Target(port)
    rows: list[dict[str, Any]] = []
    sustained_row = None
    began = time.perf_counter()
    try:
        warm = appointments[0]
        # Warm-up, unmeasured: every worker builds its environment (runtime, handler) once.
        run(target, 2 * args.threads, 2.0, lambda c, i: send(c, "POST", "/meetings", tokens[i % 2],
                                                              {"appointmentId": warm}), {200, 201})  # fmt: skip
        conn = target.connection()
        conn.request("POST", "/meetings", body=json.dumps({"appointmentId": appointments[1]}),
                     headers={"x-firebase-token": tokens[0]})  # fmt: skip
        meeting_id = json.loads(conn.getresponse().read())["meeting"]["MeetingId"]
        conn.close()

        def create_for(appointment: str) -> Any:
            return lambda c, i: send(c, "POST", "/meetings", tokens[i % 2], {"appointmentId": appointment})

        scenarios: list[tuple[str, Any]] = [
            ("create", None),
            ("get", lambda c, i: send(c, "GET", f"/meetings/{meeting_id}", tokens[i % 2])),
            ("join", lambda c, i: send(c, "POST", f"/meetings/{meeting_id}/attendees", tokens[i % 2])),
        ]
        for name, request in scenarios:
            for clients in LEVELS:
                if name == "create":
                    request = create_for(appointments[2 + LEVELS.index(clients)])
                rows.append({"scenario": name, **run(target, clients, seconds, request, EXPECTED[name])})
                print(f"  {name:14} {clients:3} clients: {rows[-1]['requests_per_second']:8.1f} req/s", flush=True)
        # One client while another connection has sent half a request and stopped.
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b'POST /meetings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"appoint')
        get = scenarios[1][1]
        rows.append({"scenario": "get + stalled", **run(target, 1, seconds, get, EXPECTED["get"])})
        stalled.close()
        if sustained:
            print(f"  sustained: 20 clients reading for {sustained:.0f} s ...", flush=True)
            sustained_row = {"scenario": "get (sustained)", **run(target, 20, sustained, get, {200})}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        if pg is not None:
            pg.cleanup()

    one = {r["scenario"]: r["requests_per_second"] for r in rows if r["clients"] == 1}
    for r in rows:
        base = one.get("get" if r["scenario"] == "get + stalled" else r["scenario"])
        r["throughput_vs_1_client"] = round(r["requests_per_second"] / base, 2) if base else None
    if sustained_row and one.get("get"):
        sustained_row["throughput_vs_1_client"] = round(sustained_row["requests_per_second"] / one["get"], 2)
    print()
    print(f"videocall serve, {args.threads} worker threads, {os.cpu_count()} cores shared with the clients, "
          f"{seconds:.0f} s per row")  # fmt: skip
    ratios = [
        f"{name} 20: {by(rows, name, 20):.2f}x 50: {by(rows, name, 50):.2f}x" for name in ("create", "get", "join")
    ]
    print("throughput vs 1 client:  " + "   ".join(ratios))
    print(f"{'scenario':16} {'clients':>7} {'req/s':>8} {'x 1 client':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'5xx':>5}")  # fmt: skip
    for r in [*rows, *([sustained_row] if sustained_row else [])]:
        print(f"{r['scenario']:16} {r['clients']:7d} {r['requests_per_second']:8.1f} "
              f"{r.get('throughput_vs_1_client') or 0:10.2f} {r['p50_ms'] or 0:8.2f} {r['p99_ms'] or 0:8.2f} "
              f"{r['errors']:7d} {r['server_errors_5xx']:5d}")  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "http_load",
        "quick": args.quick,
        "seconds_per_row": seconds,
        "server_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - began, 1),
        "rows": rows,
        "sustained": sustained_row,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


def by(rows: list[dict[str, Any]], scenario: str, clients: int) -> float:
    return next(
        (r["throughput_vs_1_client"] or 0.0) for r in rows if r["scenario"] == scenario and r["clients"] == clients
    )


if __name__ == "__main__":
    main()
