"""The benchmark suite (benchmarks, not timed tests): one command, one JSON file per run, a table with
the ratios first.

    .venv/bin/python benchmarks/run.py [--quick] [--only warm,growth,ratelimit,cold,http,history]
        [--iterations 300] [--growth-size 1000000] [--growth-iterations 200] [--growth-dir DIR]
        [--creates 200] [--chime-rate 10] [--chime-burst 20] [--out build/benchmarks]

- warm (benchmarks/warm.py, issue benchmark 1): every action of warm.ACTIONS through the Lambda entry
  point (real PostgreSQL, the Chime emulator answering at once, production RS256 verification with the
  certificate served from memory, X-Ray tracing on): p50/p99, database round trips counted from the
  statements the server logged (cross-checked with Database.round_trips), Chime calls, and the ratio to
  the floor (round trips x SELECT 1 + one token verification), measured in the same run.
- cold (benchmarks/cold_start.py, benchmark 2): each handler's cold start against boto3's floor.
- growth (benchmarks/growth.py, benchmark 3): join, state, batch-join, chat history and transcript with
  --growth-size sessions (messages, transcript turns, audit events alike) against an almost empty
  database, with EXPLAIN (ANALYZE, BUFFERS) of every statement. The loaded data directory is kept
  (.benchmarks/pgdata-growth). The issue's size, on a machine with room for it (~25 GB of disk, the
  load takes most of an hour on 2 cores):
      .venv/bin/python benchmarks/run.py --only growth --growth-size 10000000
- ratelimit (benchmarks/ratelimit.py, benchmark 4): --creates meetings asked for at once against a Chime
  that allows --chime-rate requests/s with burst --chime-burst, under the deployed budget (reserved
  concurrency, function timeout, API Gateway's 29 s).
- http (benchmarks/http_load.py, benchmark 5) and history (benchmarks/message_history.py, chat history
  growth) run as they are, in their own processes; their JSON is folded into this run's.

--quick (what CI runs through tests/test_benchmarks.py): a few iterations, a small growth size, 30
creates; it shows the suite still works, its figures mean little. The JSON goes to
--out/suite-<UTC timestamp>.json (build/ is git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402  (sets the deployed-like environment before anything from videocall)

ROOT = harness.ROOT
IN_PROCESS = ("warm", "growth", "ratelimit")
SUBPROCESS = {"cold": "cold_start.py", "http": "http_load.py", "history": "message_history.py"}
ORDER = ("warm", "cold", "growth", "ratelimit", "http", "history")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = [b.strip() for b in args.only.split(",")] if args.only else list(ORDER)
    unknown = set(only) - set(ORDER)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(ORDER)}")
    q = args.quick
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    report: dict[str, Any] = {"suite": "videocall benchmarks", "quick": q, "started_at": stamp, "machine": _machine(),
                              "results": {}}  # fmt: skip
    for name in ORDER:
        if name not in only:
            continue
        started = time.perf_counter()
        print(f"... {name}", file=sys.stderr, flush=True)
        try:
            if name == "warm":
                import warm

                result = warm.run(iterations=args.iterations or (10 if q else 300))
            elif name == "growth":
                import growth

                result = growth.run(size=args.growth_size or (2_000 if q else 1_000_000),
                                    iterations=args.growth_iterations or (5 if q else 200),
                                    data_dir=Path(args.growth_dir) if args.growth_dir else None)  # fmt: skip
            elif name == "ratelimit":
                import ratelimit

                result = ratelimit.run(creates=args.creates or (30 if q else 200), rate=args.chime_rate,
                                       burst=args.chime_burst)  # fmt: skip
            else:
                result = _subprocess(SUBPROCESS[name], q, out_dir / f"{name}-{stamp}.json")
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        result["seconds"] = round(time.perf_counter() - started, 1)
        report["results"][name] = result
    path = out_dir / f"suite-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    print(render(report))
    print(f"\nwritten: {path}")
    failed = [n for n, r in report["results"].items() if "error" in r]
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="CI mode: tiny sizes, shows the suite works")
    p.add_argument("--only", help="comma-separated subset of: " + ",".join(ORDER))
    p.add_argument("--iterations", type=int, help="warm: timed iterations per action (300; quick 10)")
    p.add_argument("--growth-size", type=int, help="growth: sessions (and messages, turns) loaded (1,000,000)")
    p.add_argument("--growth-iterations", type=int, help="growth: iterations per path and database (200)")
    p.add_argument("--growth-dir", help="growth: data directory kept between runs (.benchmarks/pgdata-growth)")
    p.add_argument("--creates", type=int, help="ratelimit: meetings asked for at once (200; quick 30)")
    p.add_argument("--chime-rate", type=float, default=10.0, help="ratelimit: Chime requests/s (10)")
    p.add_argument("--chime-burst", type=int, default=20, help="ratelimit: Chime burst (20)")
    p.add_argument("--out", default=str(ROOT / "build" / "benchmarks"), help="directory for the JSON files")
    return p


def _subprocess(script: str, quick: bool, out: Path) -> dict[str, Any]:
    """A sibling benchmark in its own process (its own environment), its JSON folded in, its table kept."""
    if not (HERE / script).exists():
        return {"error": f"{script} is not there yet"}
    cmd = [sys.executable, str(HERE / script), "--out", str(out)] + (["--quick"] if quick else [])
    # The environment before harness made this process deployed-like (STAGE=test, CHIME_BACKEND=aws, ...):
    # `videocall serve` keeps whatever it inherits, and with those it answered every create 503.
    env = dict(harness.ORIGINAL_ENVIRONMENT)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    result: dict[str, Any] = {"command": " ".join(["benchmarks/" + script, *cmd[2:]]), "table": done.stdout[-6000:]}
    if done.returncode != 0:
        result["error"] = f"exit {done.returncode}: {done.stderr[-1500:]}"
    if out.exists():
        result["report"] = json.loads(out.read_text())
    return result


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine()}  # fmt: skip


# --- the table ------------------------------------------------------------------------------------------
def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def ratio_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, what, ratio, target, met) for every ratio the suite measured."""
    rows = []
    res = report["results"]
    for a in res.get("warm", {}).get("actions", []):
        if "ratio" in a:
            rows.append(("warm", a["action"], f"{a['ratio']:.1f}x", "<= 4x", _ok(a["met"].get("ratio"))))
    for p in res.get("growth", {}).get("paths", []):
        if "ratio" in p:
            rows.append(("growth", f"{p['path']} @ {res['growth']['size']:,}", f"{p['ratio']:.2f}x", "<= 1.1x",
                         _ok(p["met"]["ratio"])))  # fmt: skip
    rl = res.get("ratelimit", {})
    if "chime" in rl:
        rows.append(("ratelimit", "achieved Chime rate / limit", f"{rl['chime']['achieved_vs_limit']:.2f}",
                     ">= 0.80", _ok(rl["met"]["rate_80_percent"])))  # fmt: skip
    cold = res.get("cold", {}).get("report") or {}
    handlers = cold.get("handlers", cold.get("results")) if isinstance(cold, dict) else None
    for h in handlers if isinstance(handlers, list) else []:
        # cold_start.py's own JSON: the first ratio-like figure per handler (import over the floor).
        ratio = next((v for k, v in h.items() if "ratio" in k and isinstance(v, int | float)), None)
        if ratio is not None:
            rows.append(("cold", str(h.get("handler") or h.get("name") or "?"), f"{ratio:.2f}x", "<= 1.5x", "-"))
    return rows


def render(report: dict[str, Any]) -> str:
    lines = [f"machine: {report['machine']['cpus']} CPUs, {report['machine']['platform']}"
             + ("   (QUICK: figures mean little)" if report["quick"] else "")]  # fmt: skip
    lines += ["", "RATIOS", f"{'benchmark':10} {'what':44} {'ratio':>8} {'target':>9} {'met':>4}"]
    lines += [f"{b:10} {w[:44]:44} {r:>8} {t:>9} {m:>4}" for b, w, r, t, m in ratio_rows(report)]
    res = report["results"]
    warm = res.get("warm")
    if warm and "actions" in warm:
        f = warm["floor"]
        lines += ["", f"WARM (n={warm['iterations']} per action; floor: SELECT 1 p50 {f['select_1']['p50_ms']:.3f} ms,"
                      f" RS256 verification p50 {f['verify_id_token']['p50_ms']:.3f} ms; tracing on)",
                  f"{'action':26} {'p50 ms':>7} {'p99 ms':>7} {'trips':>5} {'srv ms':>6} {'chime':>5} "
                  f"{'floor':>6} {'ratio':>6}  targets met"]  # fmt: skip
        for a in warm["actions"]:
            if "error" in a:
                lines.append(f"{a['action']:26} ERROR {a['error'][:90]}")
                continue
            trips = f"{a['round_trips']}" + ("" if a["round_trips_agree"] else f"!={a['round_trips_counter']}")
            met = " ".join(f"{k}:{_ok(v)}" for k, v in a["met"].items())
            lines.append(f"{a['action']:26} {a['p50_ms']:7.2f} {a['p99_ms']:7.2f} {trips:>5} {a['server_ms']:6.2f} "
                         f"{a['chime_calls']:5d} {a['floor_ms']:6.3f} {a['ratio']:5.1f}x  {met}")  # fmt: skip
        c = warm["batch_join_concurrency"]
        lines.append(f"batch-join Chime calls: {c['threads']} threads, {c['max_in_flight']} in flight at once")
    growth = res.get("growth")
    if growth and "paths" in growth:
        load = growth["load"]["big"]
        how = "reused" if load.get("reused") else f"loaded in {load.get('load_seconds')} s"
        lines += [
            "",
            f"GROWTH ({growth['size']:,} sessions vs almost empty; {how}; n={growth['iterations']})",
            f"{'path':22} {'small p50':>9} {'big p50':>8} {'ratio':>6} {'big p99':>8}  seq scans (loaded tables)",
        ]
        for p in growth["paths"]:
            if "error" in p:
                lines.append(f"{p['path']:22} ERROR {p['error'][:90]}")
                continue
            lines.append(f"{p['path']:22} {p['small']['p50_ms']:9.2f} {p['big']['p50_ms']:8.2f} {p['ratio']:5.2f}x "
                         f"{p['big']['p99_ms']:8.2f}  {', '.join(p['seq_scans']) or 'none'}")  # fmt: skip
    rl = res.get("ratelimit")
    if rl and "chime" in rl:
        d = rl["deployed"]
        limit = rl["chime_limit"]
        lines += ["", f"RATELIMIT ({rl['creates']} creates at once; Chime {limit['rate_per_s']:.0f}/s burst "
                      f"{limit['burst']}; {d['reserved_concurrency']} environments, timeout "
                      f"{d['function_timeout_s']:.0f} s; a Lambda throttle is API Gateway's "
                      f"{d['lambda_throttle_answer']['status']} ({d['lambda_throttle_answer']['gateway_response']}))",
                  f"first wave: {rl['first_wave']}   all attempts ({rl['attempts']}): {rl['all_attempts']}",
                  f"5xx other than 503+Retry-After: {rl['bad_5xx']}   every meeting: {rl['meetings_obtained']}/"
                  f"{rl['creates']} after {rl['all_obtained_after_s']} s   longest invocation: "
                  f"{rl['max_invocation_s']} s",
                  f"Chime: {rl['chime']['accepted']} accepted ({rl['chime']['by_operation']}), "
                  f"{rl['chime']['throttled']} throttled, {rl['chime']['achieved_rate_per_s']}/s achieved; "
                  f"meetings alive in Chime "
                  f"{rl['chime']['meetings_alive']} vs active sessions {rl['sessions_active']}"]  # fmt: skip
    for name in ("cold", "http", "history"):
        r = res.get(name)
        if r:
            table = (r.get("table") or "").rstrip().splitlines()
            lines += ["", f"{name.upper()} ({r.get('command', '')}; last lines of its output)", *table[-14:]]
    for name, r in res.items():
        if "error" in r:
            lines.append(f"\n{name}: ERROR {r['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
