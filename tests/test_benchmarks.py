"""CI's quick mode of the benchmark suite: it still runs end to end and reports what it measures.
No timing assertions (a shared CI machine's milliseconds mean little); what is checked is what the
figures rest on: the server's own statement count agrees with Database.round_trips, every action
answered as expected, the rate-limited Chime was actually hit, and a Seq Scan check ran."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "warm,growth,ratelimit", "--out", str(out),
         "--growth-dir", str(out / "pgdata-growth"), "--iterations", "3", "--growth-iterations", "2",
         "--creates", "25"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "RATIOS" in done.stdout.split("WARM")[0]  # the table starts with the ratios
    (path,) = out.glob("suite-*.json")
    return json.loads(path.read_text())


def test_warm_counts_round_trips_from_the_server_and_agrees_with_the_counter(report: dict) -> None:
    actions = report["results"]["warm"]["actions"]
    names = {a["action"] for a in actions}
    assert {"create (new meeting)", "join", "state", "batch-join of 250", "end"} <= names
    for action in actions:
        assert "error" not in action, action
        assert action["round_trips"] >= 1 and action["round_trips_agree"], action
        assert len(action["statements"]) == action["round_trips"]
        assert action["ratio"] > 0 and action["floor_ms"] > 0
    batch = next(a for a in actions if a["action"] == "batch-join of 250")
    assert batch["chime_calls"] == 3


def test_growth_compares_both_databases_and_explains_every_path(report: dict) -> None:
    growth = report["results"]["growth"]
    for path in growth["paths"]:
        assert "error" not in path, path
        assert path["small"]["n"] == path["big"]["n"] > 0
        assert "seq_scans" in path
        assert all("Execution Time" in p["plan"] for p in growth["explain"][path["path"]])


def test_ratelimit_hits_the_limit_and_every_client_gets_its_meeting(report: dict) -> None:
    rl = report["results"]["ratelimit"]
    assert rl["chime"]["throttled"] > 0  # 25 creates (50 calls) against burst 20 must be throttled
    assert rl["meetings_obtained"] == rl["creates"] == rl["sessions_active"]
    assert rl["chime"]["accepted"] >= 2 * rl["creates"]
    # A throttled create keeps the meeting Chime made: each meeting is made once, however often retried.
    assert rl["chime"]["by_operation"]["create_meeting"] == rl["creates"]


def test_the_http_benchmark_drives_the_local_server_without_errors(tmp_path: Path) -> None:
    """run.py starts `videocall serve` in its own process from the environment before harness made this one
    deployed-like (with STAGE=test and CHIME_BACKEND=aws inherited, the server answered every create 503)."""
    done = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--only", "http", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = tmp_path.glob("suite-*.json")
    http = json.loads(path.read_text())["results"]["http"]
    assert "error" not in http, http.get("error")
    rows = http["report"]["rows"]
    assert {r["scenario"] for r in rows} >= {"create", "get", "join"}
    assert all(r["errors"] == 0 and r["server_errors_5xx"] == 0 and r["requests"] > 0 for r in rows), rows
