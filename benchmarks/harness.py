"""What every in-process benchmark shares: a deployed-like environment, an embedded PostgreSQL whose
server log is the statement counter, production RS256 token verification with Google's certificates
served from memory, X-Ray tracing on with a local daemon sink, and Lambda environments (a runtime with
its own database connection plus a resolver of its own) called through the Lambda entry point.

Import this module before anything from `videocall`: it sets the environment Powertools, the X-Ray
SDK and Settings read at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import random
import re
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
PROJECT = "videocall-bench"
KID = "bench-key-1"

# Local settings that must not leak into the measured process (emulator-mode tokens, someone's database).
ORIGINAL_ENVIRONMENT = dict(os.environ)  # what the sibling benchmarks (own processes) start from: run.py
for _name in ("FIREBASE_AUTH_EMULATOR_HOST", "DATABASE_URL", "S3_ENDPOINT_URL", "AWS_PROFILE", "POWERTOOLS_DEV"):
    os.environ.pop(_name, None)
os.environ.update({
    # Test stage: the Chime stand-in is handed in explicitly; everything else as deployed.
    "STAGE": "test", "FIREBASE_PROJECT_ID": PROJECT, "CHIME_BACKEND": "aws", "DB_AUTH": "url",
    "POWERTOOLS_SERVICE_NAME": "videocall", "POWERTOOLS_METRICS_NAMESPACE": "Telehealth/VideoCall",
    "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_TRACE_DISABLED": "false", "POWERTOOLS_METRICS_DISABLED": "false",
    # Lambda's own: the X-Ray SDK runs in its Lambda mode (a facade segment per trace header) and sends
    # segments over UDP to the "daemon" (ours: a socket that drains them); no daemon -> no error.
    "LAMBDA_TASK_ROOT": str(FUNCTIONS), "AWS_LAMBDA_FUNCTION_NAME": "videocall-bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    "AWS_REGION": "eu-central-1", "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "ASIABENCHMARKONLY000", "AWS_SECRET_ACCESS_KEY": "benchmark-only",
})  # fmt: skip
sys.path.insert(0, str(FUNCTIONS))
sys.path.insert(1, str(ROOT))  # infra.*: the deployed limits are read from the CDK app


class XRaySink:
    """The X-Ray daemon's UDP port: receives and counts segment documents, keeps nothing."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self.documents = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                self._sock.recv(65536)
            except OSError:
                return
            self.documents += 1


XRAY = XRaySink()
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = XRAY.address


def new_trace_header() -> None:
    """What Lambda sets before each invocation (sampled: every request traced, the worst case)."""
    root = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    os.environ["_X_AMZN_TRACE_ID"] = f"Root={root};Parent={uuid.uuid4().hex[:16]};Sampled=1"


class _Discard(io.TextIOBase):
    """Where the function's stdout (JSON logs, EMF metrics) goes: CloudWatch's stand-in."""

    def write(self, s: str) -> int:
        return len(s)


DISCARD = _Discard()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Logs and metrics are produced as deployed (INFO, EMF) and discarded instead of printed."""
    from videocall.core.observability import logger

    handler = logger.registered_handler
    stream = handler.setStream(DISCARD)
    try:
        with contextlib.redirect_stdout(DISCARD):
            yield
    finally:
        handler.setStream(stream)


# --- Firebase: production RS256 verification, certificates from memory --------------------------------
class Identities:
    """A Google-like signing key; tokens minted for any Firebase uid; the certificate served where
    firebase-admin fetches it (the `responses` mock: no network), with Google's Cache-Control."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
        from google.auth import crypt

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.bench")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
        )  # fmt: skip
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._signer = crypt.RSASigner.from_string(pem.decode(), key_id=KID)
        self.certificate = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.cert_fetches = 0
        self._tokens: dict[str, str] = {}

    def token(self, uid: str) -> str:
        if uid not in self._tokens:
            from google.auth import jwt as google_jwt

            now = int(time.time())
            payload = {
                "iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "auth_time": now - 10,
                "sub": uid, "user_id": uid, "iat": now - 10, "exp": now + 3600,
                "firebase": {"sign_in_provider": "password"},
            }  # fmt: skip
            self._tokens[uid] = google_jwt.encode(self._signer, payload).decode()
        return self._tokens[uid]

    @contextlib.contextmanager
    def served(self) -> Iterator[None]:
        import responses
        from firebase_admin._token_gen import ID_TOKEN_CERT_URI

        def answer(_request: Any) -> tuple[int, dict[str, str], str]:
            self.cert_fetches += 1
            headers = {"Cache-Control": "public, max-age=22000, must-revalidate, no-transform",
                       "Content-Type": "application/json; charset=UTF-8"}  # fmt: skip
            return 200, headers, json.dumps({KID: self.certificate})

        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(responses.GET, ID_TOKEN_CERT_URI, callback=answer)
            yield


# --- PostgreSQL: embedded, its server log counting the statements it ran ---------------------------------
class Postgres:
    """An embedded PostgreSQL (pgserver) in `data_dir`, kept or deleted at the end. Connections opened
    with `counted=True` have log_statement=all: each statement the server runs for them is one line
    of its log, tagged with the backend's pid, which is what `StatementLog` counts."""

    def __init__(self, data_dir: Path | None, *, keep: bool = False) -> None:
        import tempfile

        import pgserver

        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="videocall-bench-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(str(self.data_dir), cleanup_mode="stop" if keep else "delete")
        self.url = self.server.get_uri()
        self.log_path = self.data_dir / "log"

    def counted_url(self) -> str:
        sep = "&" if "?" in self.url else "?"
        options = "-c log_statement=all -c log_min_duration_statement=0"
        return self.url + sep + "options=" + urllib.parse.quote(options)

    def close(self) -> None:
        self.server.cleanup()


_LOG_PREFIX = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class StatementLog:
    """Statements the server logged for one backend pid since `mark()` (log_statement=all writes one
    line per statement as it starts, before its result goes back)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def mark(self) -> None:
        self._offset = self._path.stat().st_size

    def since_mark(self, pid: int) -> tuple[list[str], float]:
        """The statements (first 160 characters each) and the server's total time for them, in ms."""
        with self._path.open("rb") as f:
            f.seek(self._offset)
            text = f.read().decode("utf-8", "replace")
        # Simple protocol: "statement: <sql>"; extended (statements with parameters): "execute <name>: <sql>";
        # log_min_duration_statement=0 adds "duration: <ms> ms" when each one ends.
        # A multi-line statement continues on lines without the log prefix: join them to their entry.
        entries: list[str] = []
        for line in text.splitlines():
            if entries and not _LOG_PREFIX.match(line):
                entries[-1] += " " + line
            else:
                entries.append(line)
        tag = f"[{pid}] LOG:  "
        found, server_ms = [], 0.0
        for line in entries:
            _, hit, rest = line.partition(tag)
            if hit and rest.startswith(("statement: ", "execute ")):
                found.append(" ".join(rest.split(": ", 1)[-1].split())[:160])
            elif hit and rest.startswith("duration: "):
                server_ms += float(rest.split()[1])
        return found, server_ms


# --- Lambda environments ------------------------------------------------------------------------------
class LambdaContext:
    """The context object Lambda hands in, with a real deadline (the function's timeout)."""

    function_name = "videocall-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:111122223333:function:videocall-bench"

    def __init__(self, timeout_s: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Environment:
    """One Lambda execution environment: its own runtime (database connection, Chime gateway,
    authenticator) and its own resolver (Powertools' resolver keeps the current event on itself)."""

    def __init__(self, database_url: str, chime_client: Any, *, routes: Any = None, timeout_s: float = 15.0) -> None:
        from videocall.core.settings import Settings
        from videocall.http import build_resolver, make_lambda_handler
        from videocall.runtime import build_runtime

        settings = Settings.from_env({**os.environ, "DATABASE_URL": database_url})
        self.runtime = build_runtime(settings, chime_client=chime_client)
        self.handler = make_lambda_handler(build_resolver(routes) if routes is not None else build_resolver())
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, token: str, body: Any = None, query: str = "") -> Reply:
        from videocall.local.server import rest_event
        from videocall.runtime import use_thread_runtime

        event = rest_event(method, path, {"x-firebase-token": token}, json.dumps(body) if body is not None else None,
                           query)  # fmt: skip
        use_thread_runtime(self.runtime)
        new_trace_header()
        result = self.handler(event, LambdaContext(self.timeout_s))
        # The REST resolver answers with multiValueHeaders; API Gateway sends both kinds to the client.
        headers = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items() if v}
        headers.update(result.get("headers") or {})
        return Reply(result["statusCode"], json.loads(result["body"]) if result.get("body") else None, headers)

    def backend_pid(self) -> int:
        return int(self.runtime.db.connection().info.backend_pid)

    def close(self) -> None:
        self.runtime.db.close()


# --- figures --------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of the samples."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 3), "p99_ms": round(percentile(values, 99), 3),
            "mean_ms": round(statistics.fmean(values), 3)}  # fmt: skip


def instant(emulator: Any) -> Any:
    """The emulator as a stand-in that answers at once: its request check against botocore's model (CPU
    a real Chime spends on its side, not ours) is skipped; the test suite holds requests to the model."""
    emulator._check = lambda operation, params: None
    return emulator


def seed_users(url: str, count: int, prefix: str, role: str = "patient") -> list[dict[str, str]]:
    """`count` registered users (firebase uid `<prefix>-<i>`), ids returned in order."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """INSERT INTO users (firebase_uid, role, display_name)
               SELECT %(p)s || '-' || i, %(role)s, 'Bench ' || i FROM generate_series(1, %(n)s) i
               ON CONFLICT (firebase_uid) DO UPDATE SET role = EXCLUDED.role
               RETURNING id::text, firebase_uid""",
            {"p": prefix, "n": count, "role": role},
        ).fetchall()
    by_uid = {uid: user_id for user_id, uid in rows}
    return [{"id": by_uid[f"{prefix}-{i}"], "uid": f"{prefix}-{i}"} for i in range(1, count + 1)]


def jitter_sleep(seconds: float) -> None:
    time.sleep(seconds * (0.5 + random.random()))  # noqa: S311
