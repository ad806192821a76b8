"""Benchmark 2 (not a test): the cold start of each Lambda handler against the floor every function
pays anyway, `import boto3; boto3.client("chime-sdk-meetings")`, measured in the same run.

    .venv/bin/python benchmarks/cold_start.py [--runs 7] [--quick] [--no-bytecode] [--only NAME ...]
                                              [--out build/benchmarks/cold_start.json]

Each sample is a fresh `python -c` process with the environment a deployed function has (tracing on,
deployed stage, IAM database auth; see infra/components/functions.py, plus what Lambda itself sets).
Two figures per handler module in functions/handlers/, both timed inside the process from before the
first import (interpreter start-up is the same for all and left out):

- import: `import handlers.<name>` (what Lambda's init phase runs);
- setup: import plus what the first request builds before any network call: the runtime (settings,
  the database connector, `import psycopg`), the authenticator (firebase-admin's app and verifier,
  HTTP routes only) and the AWS clients the route's `aws_actions` use.

The child sees what the Lambda bundle carries (infra/bundling.py): distributions outside the closure
of pyproject's runtime dependencies (pytest, moto, rich, click, ... in the dev venv) and
videocall.local are made unimportable, so an optional import (httpx's CLI pulls rich and click when
they are there) costs what it costs in Lambda. Differences that remain: this interpreter's version
(the bundle targets Lambda's). Bytecode is read, as from the bundle, which ships .pyc files compiled
for Lambda's Python (infra/bundling.py); --no-bytecode measures a bundle without them, where every
cold start compiles each module from source (no .pyc read or written).

Also measured: a warm production RS256 verification (certificates cached, tracing on), per call.

Ratios are medians over the runs divided by the floor's median. Nothing here touches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
QUICK_HANDLERS = ("create_meeting", "get_consent", "chime_meeting_events")
FLOOR = 'import boto3\nboto3.client("chime-sdk-meetings")'

# What a deployed function's process sees: our configuration (infra/components/functions.py) and
# Lambda's own variables (tracing on: LAMBDA_TASK_ROOT set, POWERTOOLS_TRACE_DISABLED unset/false).
DEPLOYED_ENV = {
    "STAGE": "prod",
    "FIREBASE_PROJECT_ID": "videocall-bench",
    "CHIME_BACKEND": "aws",
    "CHIME_CONTROL_REGION": "eu-central-1",
    "CHIME_MEDIA_REGION": "eu-central-1",
    "POWERTOOLS_SERVICE_NAME": "videocall",
    "POWERTOOLS_METRICS_NAMESPACE": "Telehealth/VideoCall",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "VIDEOCALL_MIGRATIONS_DIR": str(ROOT / "migrations"),
    "RECORDINGS_BUCKET": "videocall-prod-recordings",
    "RECORDINGS_BUCKET_REGION": "eu-central-1",
    "RECORDINGS_KMS_KEY_ARN": "arn:aws:kms:eu-central-1:111122223333:key/00000000-0000-0000-0000-000000000000",
    "PIPELINE_SINK_ROLE_ARN": "arn:aws:iam::111122223333:role/videocall-prod-pipeline-sink",
    "DB_AUTH": "iam",
    "DB_HOST": "videocall-proxy.proxy-abc.eu-central-1.rds.amazonaws.com",
    "DB_USER": "videocall_app",
    # Lambda's own.
    "LAMBDA_TASK_ROOT": str(FUNCTIONS),
    "AWS_LAMBDA_FUNCTION_NAME": "videocall-prod-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
    "AWS_REGION": "eu-central-1",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "AWS_ACCESS_KEY_ID": "ASIABENCHMARKONLY000",
    "AWS_SECRET_ACCESS_KEY": "benchmark-only",
    "AWS_SESSION_TOKEN": "benchmark-only",
    "PYTHONPATH": str(FUNCTIONS),
}
SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")  # fakes, but kept out of the report
# Local settings that must not leak into a "deployed" process.
DROPPED = ("FIREBASE_AUTH_EMULATOR_HOST", "DATABASE_URL", "S3_ENDPOINT_URL", "AWS_PROFILE")

# Before the clock starts: what is not in the bundle cannot be imported.
PRELUDE = """
import sys
_BLOCKED = frozenset({blocked!r})
class _NotInBundle:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED or name.startswith("videocall.local"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInBundle)
"""
CHILD = """
import time
_t0 = time.perf_counter()
import {module}
_t1 = time.perf_counter()
{setup}
_t2 = time.perf_counter()
print("@@", (_t1 - _t0) * 1000, (_t2 - _t0) * 1000)
"""
# A warm verification as deployed: Google's certificates (a key of our own) served from the cache.
VERIFY = """
import json, statistics, time, datetime as dt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from videocall.core.auth import CachedResponse, CertificateCache, FirebaseAuthenticator
from videocall.core.observability import tracer
from videocall.core.settings import get_settings

assert not tracer.disabled
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
now = dt.datetime.now(dt.UTC)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256()))
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
public = cert.public_bytes(serialization.Encoding.PEM).decode()
body = json.dumps({"k1": public, "k2": public}).encode()
served = CachedResponse(200, {"Cache-Control": "public, max-age=20000"}, body)
cache = CertificateCache(transport=lambda url, **kw: served)
auth = FirebaseAuthenticator(get_settings(), certificates=cache)
project = get_settings().firebase_project_id
t = int(time.time())
token = jwt.encode(crypt.RSASigner.from_string(pem, key_id="k1"), {
    "iss": "https://securetoken.google.com/" + project, "aud": project, "sub": "u1", "user_id": "u1",
    "iat": t - 10, "exp": t + 3600, "auth_time": t - 10}).decode()
auth.verify(token)
rounds = []
for _ in range(ROUNDS):
    started = time.perf_counter()
    for _ in range(200):
        auth.verify(token)
    rounds.append((time.perf_counter() - started) / 200 * 1000)
print("@@", statistics.median(rounds), cache.fetches)
"""


def deployed_env(functions: Path = FUNCTIONS) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith("POWERTOOLS_")}
    env.update(DEPLOYED_ENV)
    env.update(LAMBDA_TASK_ROOT=str(functions), PYTHONPATH=str(functions))
    return env


def not_in_bundle() -> list[str]:
    """Top-level modules installed here whose distributions the Lambda bundle does not carry: everything
    outside the closure of pyproject's runtime dependencies (with their extras and markers)."""
    import importlib.metadata as md
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    bundled = {"videocall"}  # ours (the editable install maps videocall and handlers to it)
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            continue
        bundled.add(key[0])
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append(sub)
    return sorted(
        top
        for top, dists in md.packages_distributions().items()
        if top not in sys.stdlib_module_names and not any(canonicalize_name(d) in bundled for d in dists)
    )


def runtime_parts(actions: tuple[str, ...]) -> list[str]:
    """The runtime's gateways a route's AWS actions need (each builds its boto3 client)."""
    parts = []
    if any(a.startswith("chime:") and "Pipeline" not in a for a in actions):
        parts.append("chime")
    if any(a.startswith("chime:") and "Pipeline" in a for a in actions):
        parts.append("pipelines")
    if any(a.startswith("s3:") for a in actions):
        parts.append("recordings_store")
    if any(a.startswith("comprehendmedical:") for a in actions):
        parts.append("medical")
    return parts


def handler_setups(functions: Path = FUNCTIONS) -> dict[str, str]:
    """Module name -> the first request's setup code, for every handler module on disk."""
    sys.path.insert(0, str(functions))
    from videocall.routes import EVENT_ROUTES, ROUTES, SCHEDULED_JOBS

    http = {r.module: r.aws_actions for r in ROUTES}
    other = {r.module: r.aws_actions for r in (*EVENT_ROUTES, *SCHEDULED_JOBS)}
    setups = {}
    for path in sorted((functions / "handlers").glob("*.py")):
        if path.stem == "__init__":
            continue
        module = f"handlers.{path.stem}"
        if module == "handlers.migrate_database":
            code = ["import psycopg", "from videocall.core.dbauth import connector",
                    "from videocall.core.settings import get_settings", "connector(get_settings())"]  # fmt: skip
        else:
            actions = http.get(module, other.get(module, ()))
            code = ["import psycopg", "from videocall.runtime import runtime", "rt = runtime()"]
            if module in http:
                code.append("rt.authenticator.prepare()")
            code += [f"rt.{part}" for part in runtime_parts(actions)]
        setups[module] = "\n".join(code)
    return setups


class Child:
    """Runs code in a fresh interpreter with the deployed environment and the bundle's modules only."""

    def __init__(
        self, blocked: list[str], *, bytecode: bool, functions: Path = FUNCTIONS, python: str = sys.executable
    ) -> None:
        self.python = python
        self.functions = functions
        self.env = deployed_env(functions)
        self.prelude = PRELUDE.format(blocked=blocked)
        self.bytecode = bytecode

    def run(self, code: str) -> list[float]:
        env = self.env
        with tempfile.TemporaryDirectory() as empty:
            if not self.bytecode:  # as the bundle: no .pyc to read, none written
                env = {**env, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
            result = subprocess.run(  # noqa: S603 - our own interpreter and code
                [self.python, "-c", self.prelude + code],
                env=env, cwd=self.functions, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("@@")), None)
        if result.returncode != 0 or line is None:
            raise RuntimeError(result.stderr[-3000:])
        return [float(x) for x in line.split()[1:]]

    def run_version(self) -> str:
        out = subprocess.run([self.python, "-c", "import platform; print(platform.python_version())"],  # noqa: S603
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.strip()

    def handler(self, module: str, setup: str) -> tuple[float, float]:
        imported, full = self.run(CHILD.format(module=module, setup=setup))
        return imported, full

    def floor(self) -> float:
        return self.run(CHILD.format(module="boto3", setup=FLOOR))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per handler (median taken)")
    parser.add_argument("--quick", action="store_true", help=f"3 runs of {', '.join(QUICK_HANDLERS)} only")
    parser.add_argument("--only", nargs="*", help="handler names (create_meeting ...) to measure")
    parser.add_argument("--no-bytecode", action="store_true", help="compile every module from source")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "benchmarks" / "cold_start.json")
    parser.add_argument("--functions", type=Path, default=FUNCTIONS, help="another tree's functions/ (before/after)")
    parser.add_argument("--python", default=sys.executable,
                        help="the children's interpreter, e.g. a Python 3.13 venv with only the runtime dependencies "
                             "(Lambda's version; the bundle's packages)")  # fmt: skip
    args = parser.parse_args()

    setups = handler_setups(args.functions.resolve())
    wanted = args.only or (QUICK_HANDLERS if args.quick else None)
    if wanted:
        setups = {m: s for m, s in setups.items() if m.removeprefix("handlers.") in wanted}
    runs = 3 if args.quick else args.runs
    blocked = not_in_bundle()
    child = Child(blocked, bytecode=not args.no_bytecode, functions=args.functions.resolve(), python=args.python)
    floor: list[float] = []
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in setups}
    failures: dict[str, str] = {}
    started = time.perf_counter()
    child.floor()  # warm the file cache (and bytecode) once, unmeasured
    for module, setup in setups.items():
        try:
            child.handler(module, setup)
        except RuntimeError as exc:
            failures[module] = str(exc)
    for _ in range(runs):
        order = [m for m in setups if m not in failures]
        random.shuffle(order)
        floor.append(child.floor())
        for i, module in enumerate(order):
            samples[module].append(child.handler(module, setups[module]))
            if i % 6 == 5:  # the floor is sampled through the round: the machine's load drifts
                floor.append(child.floor())
        floor.append(child.floor())
    try:
        verify_ms, verify_fetches = child.run(VERIFY.replace("ROUNDS", "3" if args.quick else "15"))
    except RuntimeError as exc:  # a tree without the certificate cache (--functions of an older checkout)
        verify_ms, verify_fetches = float("nan"), float("nan")
        failures["warm verification"] = str(exc)[-500:]

    floor_ms = statistics.median(floor)
    rows = []
    for module, values in samples.items():
        if not values:
            continue
        imp = statistics.median(v[0] for v in values)
        full = statistics.median(v[1] for v in values)
        rows.append({"handler": module.removeprefix("handlers."), "import_ratio": round(imp / floor_ms, 2),
                     "setup_ratio": round(full / floor_ms, 2), "import_ms": round(imp, 1),
                     "import_and_setup_ms": round(full, 1)})  # fmt: skip
    rows.sort(key=lambda r: -r["setup_ratio"])

    worst_import = max((r["import_ratio"] for r in rows), default=0.0)
    worst_setup = max((r["setup_ratio"] for r in rows), default=0.0)
    median_import = statistics.median(r["import_ratio"] for r in rows) if rows else 0.0
    median_setup = statistics.median(r["setup_ratio"] for r in rows) if rows else 0.0
    print(f"cold start over the floor (target <= 1.5x): import worst {worst_import:.2f}x median {median_import:.2f}x; "
          f"import+setup worst {worst_setup:.2f}x median {median_setup:.2f}x")  # fmt: skip
    print(f"floor (import boto3 + chime-sdk-meetings client): {floor_ms:.1f} ms, median of {len(floor)}"
          f"{'' if child.bytecode else ' (no bytecode)'}")  # fmt: skip
    print(f"warm RS256 verification (certificates cached, tracing on): {verify_ms:.3f} ms "
          f"(target <= 0.1 ms), certificate fetches {verify_fetches:.0f}")  # fmt: skip
    print(f"{'handler':26} {'import x':>9} {'setup x':>8} {'import ms':>10} {'+setup ms':>10}")
    for r in rows:
        print(f"{r['handler']:26} {r['import_ratio']:9.2f} {r['setup_ratio']:8.2f} "
              f"{r['import_ms']:10.1f} {r['import_and_setup_ms']:10.1f}")  # fmt: skip
    for module, error in failures.items():
        print(f"{module}: FAILED\n{error}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "cold_start",
        "target_ratio": 1.5,
        "ratios": {
            "import_worst": worst_import,
            "import_median": median_import,
            "setup_worst": worst_setup,
            "setup_median": median_setup,
        },
        "warm_verification_ms": None if verify_ms != verify_ms else round(verify_ms, 4),
        "runs": runs,
        "quick": args.quick,
        "bytecode": child.bytecode,
        "python": child.run_version(),
        "seconds": round(time.perf_counter() - started, 1),
        "floor": {"code": FLOOR, "median_ms": round(floor_ms, 1), "samples_ms": [round(f, 1) for f in floor]},
        "handlers": rows,
        "failed": sorted(failures),
        "not_in_bundle": blocked,
        "environment": {k: v for k, v in DEPLOYED_ENV.items() if k not in SECRETS},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
