"""The local stack: the whole API on one machine, no AWS account, no Docker.

- Database: DATABASE_URL when set; otherwise an embedded PostgreSQL 16 (pgserver) in
  .videocall/pgdata, started on demand and shared by every `videocall` command; migrations applied.
- Chime: the meetings and media-pipelines emulators behind the same gateways as the real clients;
  their events (meeting ended, attendee joined/left/dropped, pipeline state) reach the same handlers.
- S3/KMS: a local S3 (moto's server, in process) holds recordings; presigned links work with curl.
- Scheduled jobs: the reconciler every minute and retention daily, on a thread of their own.
- Auth: firebase-admin in emulator mode, so local tokens go through the same verify_id_token.
- HTTP: waitress, a threaded WSGI server. Each request becomes an API Gateway REST proxy event and
  goes through the same resolver, routes, handlers and Lambda entry point as in AWS.

Concurrency, the way Lambda runs several execution environments: each worker thread is one
environment with its own runtime (its own database connection and clients) and its own Lambda
handler (a resolver keeps the current event on itself), built on the worker's first request, like a
cold start. A connection is never used by two requests at once. The emulators are the one Chime of
this process, shared by every worker (they lock their state; the same ClientRequestToken gives the
same meeting, as Chime does). Chime's events are delivered one deliverer at a time, before the
response of the request that caused them, so a client that got its answer sees their effects.

Why waitress: pure Python (no C build; it installs wherever the venv does), well kept (Pylons), and
it reads a whole request (headers and body, bounded) on its I/O thread before handing it to a
worker, so a slow or half-sent request ties up no worker and blocks no one. Its own refusals (431,
413, 400) are given the API's JSON error shape below.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from videocall.runtime import Runtime

MAX_LOCAL_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
# API Gateway (REST): the request line and the headers together at most 10240 bytes.
MAX_LOCAL_HEADER_BYTES = 10240
DEFAULT_THREADS = 8  # worker threads = execution environments = database connections
LOCAL_ENV = {
    "STAGE": "local",
    "CHIME_BACKEND": "emulator",
    "FIREBASE_PROJECT_ID": "videocall-local",
    # Only its presence matters: verify_id_token then accepts unsigned tokens. Nothing listens here.
    "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


LOCAL_S3_PORT = 9090


def use_local_environment() -> None:
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    # The local S3 that `videocall serve` runs (other commands reach the same one).
    os.environ.setdefault("S3_ENDPOINT_URL", f"http://127.0.0.1:{LOCAL_S3_PORT}")
    os.environ.setdefault("PIPELINE_SINK_ROLE_ARN", "arn:aws:iam::111122223333:role/videocall-local-pipeline-sink")


def start_local_storage(port: int = LOCAL_S3_PORT) -> Any:
    """Start the local S3 + KMS (moto's server, in this process) and the recordings and attachments buckets in
    it; points S3_ENDPOINT_URL, RECORDINGS_KMS_KEY_ARN and ATTACHMENTS_KMS_KEY_ARN at them. Returns the server
    (stop() it)."""
    from videocall.local.s3 import (
        ensure_attachments_bucket,
        ensure_recordings_bucket,
        kms_client,
        s3_client,
        start_local_s3,
    )

    server, endpoint = start_local_s3(port=port)
    os.environ["S3_ENDPOINT_URL"] = endpoint
    bucket = os.environ.setdefault("RECORDINGS_BUCKET", "videocall-local-recordings")
    os.environ["RECORDINGS_KMS_KEY_ARN"] = ensure_recordings_bucket(s3_client(endpoint), kms_client(endpoint), bucket)
    # The chat's attachments bucket, with a key of its own (presigned POST uploads and GET links work with curl).
    attachments = os.environ.setdefault("ATTACHMENTS_BUCKET", "videocall-local-attachments")
    os.environ["ATTACHMENTS_KMS_KEY_ARN"] = ensure_attachments_bucket(
        s3_client(endpoint), kms_client(endpoint), attachments
    )
    return server


def local_database_url(data_dir: Path | None = None) -> str:
    """DATABASE_URL, or the embedded server's URL (started if needed), with migrations applied."""
    from videocall.core.migrate import apply_migrations

    url = os.environ.get("DATABASE_URL")
    if not url:
        import pgserver

        directory = data_dir or Path(os.environ.get("VIDEOCALL_DATA_DIR", ".videocall")) / "pgdata"
        directory.mkdir(parents=True, exist_ok=True)
        url = pgserver.get_server(str(directory.resolve())).get_uri()
        os.environ["DATABASE_URL"] = url
    apply_migrations(url)
    return url


def check_connection_budget(url: str, threads: int) -> None:
    """Each worker holds one database connection, the scheduler one more: refuse to start, saying
    why, when the database cannot give them all (rather than answering 503s under load)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int"
        ).fetchone()
    assert row is not None
    limit, in_use = row
    needed = threads + 1
    if in_use + needed > limit:
        raise SystemExit(
            f"the database allows {limit} connections and {in_use} are in use: {threads} workers need "
            f"{needed} more; lower --threads or raise max_connections"
        )


class LambdaContextStub:
    """What Powertools reads from a Lambda context object."""

    function_name = "videocall-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:000000000000:function:videocall-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


def rest_event(method: str, path: str, headers: dict[str, str], body: str | None, query: str = "") -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as API Gateway would send it."""
    request_id = str(uuid.uuid4())
    params = dict(parse_qsl(query)) or None
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "local",
            "path": path,
            "httpMethod": method,
            "resourcePath": path,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


# --- Chime's events and the scheduled jobs ------------------------------------------------------------
# One deliverer of Chime's events at a time, and one job at a time (a job runs beside requests, as a
# scheduled Lambda runs beside the API's; its events wait for the delivery lock like everyone's).
_DELIVERY_LOCK = threading.RLock()
_JOB_LOCK = threading.RLock()


def deliver_events() -> int:
    """Hand every pending Chime event to its handler. Returns only when the queue was found empty
    after the caller's own events were emitted, whoever delivered them."""
    from videocall.local.stack import BUS

    with _DELIVERY_LOCK:
        return BUS.deliver()


def run_job(name: str) -> dict[str, Any]:
    """A scheduled job through its Lambda handler, as the schedule invokes it."""
    from importlib import import_module

    from videocall.routes import SCHEDULED_JOBS

    job = next(j for j in SCHEDULED_JOBS if j.name == name)
    with _JOB_LOCK:
        result: dict[str, Any] = import_module(job.module).handler({"source": "local.schedule"}, LambdaContextStub())
    deliver_events()
    return result


def play_attendee(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What a client does in Chime (join, leave, drop), for a user's attendee in a meeting."""
    from videocall.local.chime_emulator import ChimeEmulator
    from videocall.runtime import runtime

    rt = runtime()
    row = rt.db.fetch_one(
        """SELECT m.attendee_id FROM meeting_attendees m JOIN video_call_sessions s ON s.id = m.session_id
            WHERE s.meeting_id = %(meeting)s AND m.user_id::text = %(user)s""",
        {"meeting": str(body.get("meetingId")), "user": str(body.get("userId"))},
    )
    if row is None:
        return 404, _error("attendee_not_found", "That user has no attendee in that meeting.")
    chime = rt.chime.client
    if not isinstance(chime, ChimeEmulator):
        return 409, _error("not_local", "Only the Chime emulator can act out clients.")
    try:
        event = chime.play(str(body["meetingId"]), row["attendee_id"], str(body.get("event")))
    except (ValueError, ClientError) as exc:
        return 400, _error("bad_request", str(exc))
    deliver_events()
    return 200, {"eventType": event["detail"]["eventType"], "attendeeId": row["attendee_id"]}


def _error(code: str, message: str) -> dict[str, Any]:
    """The API's error shape (videocall.http.error_response)."""
    return {"error": {"code": code, "message": message}}


# --- execution environments ------------------------------------------------------------------------------
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Environments:
    """Which runtime and Lambda handler a thread of the server uses.

    With a factory, each thread gets its own on first use (runtime.use_thread_runtime), and they
    run side by side. Without one (a test installed its runtime with use_runtime), every thread uses
    that one runtime and one handler, one thread at a time."""

    def __init__(self, factory: Callable[[], Runtime] | None) -> None:
        from videocall.http import build_resolver, make_lambda_handler

        self._factory = factory
        self._make_handler: Callable[[], LambdaHandler] = lambda: make_lambda_handler(build_resolver())
        self._local = threading.local()
        self._built: list[Runtime] = []
        self._build_lock = threading.Lock()
        self._shared_lock = threading.RLock()
        self._shared_handler = None if factory else self._make_handler()

    @contextmanager
    def entered(self) -> Iterator[LambdaHandler]:
        """This thread's environment, for one request or one scheduler tick; yields its Lambda handler."""
        if self._shared_handler is not None:
            with self._shared_lock:
                yield self._shared_handler
            return
        handler: LambdaHandler | None = getattr(self._local, "handler", None)
        if handler is None:
            handler = self._cold_start()
        yield handler

    def _cold_start(self) -> LambdaHandler:
        from videocall.runtime import use_thread_runtime

        assert self._factory is not None
        # One at a time: firebase-admin's app registry is process-wide (in Lambda, one per process).
        with self._build_lock:
            rt = self._factory()
            rt.authenticator.prepare()
            handler = self._make_handler()
            self._built.append(rt)
        use_thread_runtime(rt)
        self._local.handler = handler
        return handler

    @property
    def started(self) -> int:
        """How many environments have been built (the database connections they may hold)."""
        return len(self._built)

    def close(self) -> None:
        with self._build_lock:
            for rt in self._built:
                rt.db.close()
            self._built.clear()


# --- the WSGI application ----------------------------------------------------------------------------------
class LocalApp:
    """HTTP request -> API Gateway REST proxy event -> the Lambda entry point -> HTTP response."""

    def __init__(self, environments: Environments) -> None:
        from videocall.routes import ROUTES

        self.environments = environments
        # Methods no route declares answer 405 (API Gateway has no such method on any resource).
        self.methods = frozenset({route.method.upper() for route in ROUTES} | {"POST"})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        split = urlsplit(environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/")
        if method not in self.methods:
            refused = _error("method_not_allowed", "This API has no route for that method.")
            result = _json_result(405, refused, {"Allow": ", ".join(sorted(self.methods))})
        else:
            result = self._serve(environ, method, split.path, split.query)
        status = int(result["statusCode"])
        payload = result.get("body") or ""
        data = payload.encode() if not result.get("isBase64Encoded") else _b64(payload)
        multi = result.get("multiValueHeaders") or {k: [v] for k, v in (result.get("headers") or {}).items()}
        response_headers = [(str(k), str(v)) for k, values in multi.items() for v in values
                            if k.lower() != "content-length"]  # fmt: skip
        response_headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {_phrase(status)}", response_headers)
        # Method, path and status only (never a header, a query or a body).
        sys.stdout.write(json.dumps({"local": f"{method} {split.path}", "status": status}) + "\n")
        return [data]

    def _serve(self, environ: dict[str, Any], method: str, path: str, query: str) -> dict[str, Any]:
        # waitress has read the whole body already (at most MAX_LOCAL_BODY): this never waits on a client.
        raw = environ["wsgi.input"].read()
        try:
            with self.environments.entered() as handler:
                if path.startswith("/_local/"):
                    status, body = self._local_control(method, path, raw)
                    result = _json_result(status, body)
                else:
                    event = rest_event(method, path, _headers(environ),
                                       raw.decode("utf-8", errors="replace") if raw else None, query)  # fmt: skip
                    result = handler(event, LambdaContextStub())
                deliver_events()  # Chime's events this request caused, as EventBridge would deliver them
        except Exception as exc:  # the Lambda entry answers its own errors; this is the server's
            from videocall.core.observability import logger, safe_traceback

            logger.error("local server error", extra={"error_type": type(exc).__name__, "where": safe_traceback(exc)})
            result = _json_result(500, _error("internal_error", "Something went wrong on our side."))
        return result

    @staticmethod
    def _local_control(method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Local-only controls (never routes of the API): play attendee events, run a job now."""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return 400, _error("malformed_json", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return 400, _error("invalid_request", "The request body must be a JSON object.")
        if method == "POST" and path == "/_local/attendee-events":
            return play_attendee(body)
        if method == "POST" and path.startswith("/_local/jobs/"):
            return 200, run_job(path.rsplit("/", 1)[1])
        return 404, _error("route_not_found", "No such local control.")


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers as a client sent them (WSGI keeps them as HTTP_* keys)."""
    headers = {"Content-Type": environ.get("CONTENT_TYPE"), "Content-Length": environ.get("CONTENT_LENGTH")}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
    return {k: v for k, v in headers.items() if v}


def _json_result(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps(body, default=str),
            "headers": {"Content-Type": "application/json", **(headers or {})}}  # fmt: skip


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# waitress refuses some requests itself, before the app: said in the API's error shape.
SERVER_REFUSALS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The HTTP request is malformed."),
    413: ("body_too_large", "The request body is too large."),
    431: ("headers_too_large", f"The request line and headers exceed {MAX_LOCAL_HEADER_BYTES} bytes."),
    501: ("not_implemented", "That Transfer-Encoding is not supported."),
}


def _json_channel() -> type:
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            code, message = SERVER_REFUSALS.get(error.code, ("internal_error", "Something went wrong on our side."))
            data = json.dumps(_error(code, message)).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(data)
            self.write(data)

    class JsonChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonChannel


# --- the server ----------------------------------------------------------------------------------------------
class LocalServer:
    """waitress plus the scheduler thread, with socketserver's verbs (serve_forever, shutdown,
    server_close, server_address) so tests and the CLI drive it like before."""

    reconcile_every_seconds = 60.0
    retention_every_seconds = 24 * 3600.0

    def __init__(self, port: int, host: str, threads: int, environments: Environments) -> None:
        import logging

        from waitress.server import create_server

        queue_log = logging.getLogger("waitress.queue")  # "Task queue depth is N" for every queued request
        if queue_log.level == logging.NOTSET:
            queue_log.setLevel(logging.ERROR)
        self.environments = environments
        self.app = LocalApp(environments)
        self._waitress: Any = create_server(
            self.app, host=host, port=port, threads=threads, ident="videocall-local",
            max_request_header_size=MAX_LOCAL_HEADER_BYTES, max_request_body_size=MAX_LOCAL_BODY,
            asyncore_use_poll=True,
        )  # fmt: skip
        self._map: dict[int, Any] = getattr(self._waitress, "map", None) or self._waitress._map
        channel = _json_channel()
        for dispatcher in [self._waitress, *self._map.values()]:
            if hasattr(dispatcher, "channel_class"):
                dispatcher.channel_class = channel
        self.server_address: tuple[str, int] = (host, int(self._waitress.effective_port))
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._scheduler: threading.Thread | None = None
        self.scheduler_errors = 0

    def serve_forever(self) -> None:
        from waitress import wasyncore

        self._scheduler = threading.Thread(target=self._schedule, name="videocall-scheduler", daemon=True)
        self._scheduler.start()
        try:
            while not self._stop.is_set() and self._map:
                wasyncore.loop(timeout=0.5, use_poll=True, map=self._map, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever (running on another thread) and wait for it."""
        self._stop.set()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        from waitress import wasyncore

        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=30)
        wasyncore.close_all(self._map)
        self._waitress.task_dispatcher.shutdown()
        self.environments.close()

    def _schedule(self) -> None:
        """The scheduled jobs on their schedule, and any Chime event emitted outside a request."""
        from videocall.core.observability import logger

        next_reconcile = time.monotonic() + self.reconcile_every_seconds
        next_retention = time.monotonic() + self.retention_every_seconds
        while not self._stop.wait(0.5):
            try:
                with self.environments.entered():
                    now = time.monotonic()
                    if now >= next_reconcile:
                        next_reconcile = now + self.reconcile_every_seconds
                        run_job("reconcile")
                    if now >= next_retention:
                        next_retention = now + self.retention_every_seconds
                        run_job("apply_retention")
                    deliver_events()
            except Exception as exc:  # a job's failure is its handler's to report; keep the schedule going
                self.scheduler_errors += 1
                logger.warning("local scheduler tick failed", extra={"error_type": type(exc).__name__})


def make_server(
    port: int, host: str = "127.0.0.1", *, threads: int = DEFAULT_THREADS,
    runtime_factory: Callable[[], Runtime] | None = None,
) -> LocalServer:  # fmt: skip
    """The local server. Each worker builds its own runtime with `runtime_factory`; without one, from
    the environment's settings (`videocall serve`), or, when a runtime is installed already (a test's),
    every worker shares that one, one request at a time."""
    from videocall.runtime import installed

    factory = runtime_factory
    if factory is None and not installed():
        factory = _runtime_from_environment
    return LocalServer(port, host, threads, Environments(factory))


def _runtime_from_environment() -> Runtime:
    from videocall.core.settings import get_settings
    from videocall.runtime import build_runtime

    return build_runtime(get_settings())
