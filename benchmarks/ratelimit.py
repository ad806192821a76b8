"""Benchmark 4: Chime's rate limit. `creates` appointments' meetings are asked for at once against a
Chime stand-in that enforces `rate` requests/s with burst `burst` (a token bucket in front of the
emulator, answering ThrottlingException above it), under the deployed time budget:

- reserved concurrency (infra/config.py `reservedConcurrency`): that many execution environments,
  each a runtime with its own database connection and resolver (threads here); a request arriving
  while all are busy is throttled by Lambda, which API Gateway answers itself with the gateway
  response for INTEGRATION_FAILURE (infra/components/api.py; unmapped, DEFAULT_5XX: a 500);
- the function timeout (infra/components/functions.py, 15 s; the context's remaining time is real)
  and API Gateway's 29 s: an invocation running past its timeout would be a 502/504;
- the gateway's own retries of ThrottlingException with backoff (meetings/chime.py, core/aws.py).

Reported: what the first wave got (201/200, 503 with Retry-After, anything else), every 5xx that is
not a 503 with Retry-After (target: none), the client loop that honours Retry-After until every
appointment has its meeting, and the Chime request rate achieved against the limit (target >= 80 %).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError
from harness import Environment, Identities, Postgres, instant, quiet, seed_users

FUNCTION_TIMEOUT_S = 15.0  # infra/components/functions.py: API functions 512 MB / 15 s
API_GATEWAY_TIMEOUT_S = 29.0


def deployed_limits() -> dict[str, Any]:
    """Reserved concurrency and API Gateway's answer to a Lambda throttle, read from the CDK app."""
    from infra.components.api import GATEWAY_RESPONSES
    from infra.config import StageConfig

    answers = {g.type.response_type: g for g in GATEWAY_RESPONSES}
    throttle = answers.get("INTEGRATION_FAILURE") or answers.get("DEFAULT_5XX")
    status = throttle.status if throttle and throttle.status else 500
    headers = dict(throttle.headers) if throttle else {}
    return {"reserved_concurrency": StageConfig().reserved_concurrency, "function_timeout_s": FUNCTION_TIMEOUT_S,
            "api_gateway_timeout_s": API_GATEWAY_TIMEOUT_S,
            "lambda_throttle_answer": {"status": status, "headers": headers,
                                       "gateway_response": "INTEGRATION_FAILURE" if "INTEGRATION_FAILURE" in answers
                                       else "DEFAULT_5XX"}}  # fmt: skip


class RateLimitedChime:
    """A token bucket (rate/s, burst) in front of the emulator: over it, Chime's ThrottlingException."""

    def __init__(self, emulator: Any, rate: float, burst: int) -> None:
        self._emulator = emulator
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()
        self.accepted: list[float] = []
        self.throttled = 0
        self.by_operation: Counter[str] = Counter()

    def _take(self, operation: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                self.throttled += 1
                error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
                meta = {"HTTPStatusCode": 429, "HTTPHeaders": {}}
                raise ClientError({"Error": error, "ResponseMetadata": meta}, operation)
            self._tokens -= 1
            self.accepted.append(now)
            self.by_operation[operation] += 1

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._emulator, name)
        if not callable(target) or name.startswith("_"):
            return target

        def limited(**params: Any) -> Any:
            self._take(name)
            return target(**params)

        return limited


def run(*, creates: int, rate: float = 10.0, burst: int = 20, concurrency: int | None = None,
        give_up_s: float = 600.0) -> dict[str, Any]:  # fmt: skip
    from videocall.core.migrate import apply_migrations
    from videocall.local.chime_emulator import ChimeEmulator
    from videocall.routes import ROUTES_BY_NAME

    # Twenty environments share one process here (in Lambda, one each): the X-Ray SDK's per-thread
    # context then reports "no subsegment to end"; quiet it, tracing stays on.
    logging.getLogger("aws_xray_sdk").setLevel(logging.CRITICAL)
    limits = deployed_limits()
    concurrency = concurrency or limits["reserved_concurrency"]
    answer = limits["lambda_throttle_answer"]
    pg = Postgres(None)
    ids = Identities()
    envs: list[Environment] = []
    try:
        apply_migrations(pg.url)
        dr = seed_users(pg.url, 1, "rl-dr", role="provider")[0]
        pat = seed_users(pg.url, 1, "rl-pat")[0]
        _appointments(pg.url, creates, dr["id"], pat["id"])
        emulator = instant(ChimeEmulator())
        chime = RateLimitedChime(emulator, rate, burst)
        envs = [Environment(pg.url, chime, routes=[ROUTES_BY_NAME["create_meeting"]]) for _ in range(concurrency)]
        free: queue.SimpleQueue[Environment] = queue.SimpleQueue()
        for env in envs:
            free.put(env)
        token = ids.token(dr["uid"])
        lock = threading.Lock()
        attempts: list[dict[str, Any]] = []
        done_at: dict[int, float] = {}
        start = threading.Barrier(creates)
        t0 = time.monotonic()

        def invoke(i: int) -> tuple[int, dict[str, str], float]:
            try:
                env = free.get_nowait()
            except queue.Empty:
                return answer["status"], answer["headers"], 0.0  # Lambda throttled: API Gateway answers
            started = time.monotonic()
            try:
                reply = env.call("POST", "/meetings", token, {"appointmentId": f"rl_{i}"})
            finally:
                free.put(env)
            took = time.monotonic() - started
            if took > FUNCTION_TIMEOUT_S:
                return 502, {}, took  # Lambda would have stopped it: API Gateway's 502
            return reply.status, reply.headers, took

        def client(i: int) -> None:
            start.wait()
            while time.monotonic() - t0 < give_up_s:
                status, headers, took = invoke(i)
                with lock:
                    attempts.append({"i": i, "status": status, "retry_after": headers.get("Retry-After"),
                                     "seconds": round(took, 3), "at": round(time.monotonic() - t0, 3)})  # fmt: skip
                if status in (200, 201):
                    done_at[i] = time.monotonic() - t0
                    return
                retry_after = headers.get("Retry-After")
                # Honour Retry-After; without one (a 5xx), back off a second or two.
                wait = float(retry_after) if retry_after else 1.0
                time.sleep(wait * (1 + random.random() * 0.25))  # noqa: S311

        with ids.served(), quiet():
            threads = [threading.Thread(target=client, args=(i,)) for i in range(creates)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        first = [next(a for a in attempts if a["i"] == i) for i in range(creates) if any(a["i"] == i for a in attempts)]
        outcomes = Counter(_outcome(a) for a in attempts)
        span = (chime.accepted[-1] - chime.accepted[0]) if len(chime.accepted) > 1 else 0.0
        achieved = (len(chime.accepted) - burst) / span if span > 0 else 0.0
        bad_5xx = sum(n for k, n in outcomes.items() if k.startswith("5") and k != "503 Retry-After")
        active = _count(pg.url, "SELECT count(*) FROM video_call_sessions WHERE status = 'active'")
        return {
            "benchmark": "ratelimit",
            "creates": creates, "chime_limit": {"rate_per_s": rate, "burst": burst}, "deployed": limits,
            "environments": concurrency,
            "first_wave": dict(Counter(_outcome(a) for a in first)),
            "all_attempts": dict(outcomes), "attempts": len(attempts),
            "bad_5xx": bad_5xx,
            "meetings_obtained": len(done_at), "all_obtained_after_s": round(max(done_at.values(), default=0.0), 2),
            "max_invocation_s": max((a["seconds"] for a in attempts), default=0.0),
            "chime": {"accepted": len(chime.accepted), "throttled": chime.throttled,
                      "by_operation": dict(chime.by_operation), "busy_span_s": round(span, 2),
                      "achieved_rate_per_s": round(achieved, 2), "achieved_vs_limit": round(achieved / rate, 2),
                      "meetings_alive": emulator.meeting_count},
            "sessions_active": active,
            "met": {"no_bad_5xx": bad_5xx == 0, "every_meeting": len(done_at) == creates,
                    "rate_80_percent": achieved >= 0.8 * rate},
        }  # fmt: skip
    finally:
        for env in envs:
            env.close()
        pg.close()


def _outcome(attempt: dict[str, Any]) -> str:
    status = attempt["status"]
    if status == 503 and attempt["retry_after"]:
        return "503 Retry-After"
    return str(status)


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def _appointments(url: str, count: int, provider_id: str, patient_id: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO appointments (id, provider_id, patient_id, scheduled_at)
               SELECT 'rl_' || i, %s, %s, now() FROM generate_series(0, %s - 1) i""",
            (provider_id, patient_id, count),
        )
