"""The local stack: the whole API on one machine, no AWS account, no Docker.

- Database: DATABASE_URL when set; otherwise an embedded PostgreSQL 16 (pgserver) in
  .videocall/pgdata, started on demand and shared by every `videocall` command; migrations applied.
- Chime: the meetings and media-pipelines emulators behind the same gateways as the real clients;
  their events (meeting ended, attendee joined/left/dropped, pipeline state) reach the same handlers.
- S3/KMS: a local S3 (moto's server, in process) holds recordings; presigned links work with curl.
- Scheduled jobs: the reconciler every minute and retention daily, between requests.
- Auth: firebase-admin in emulator mode, so local tokens go through the same verify_id_token.
- HTTP: each request becomes an API Gateway REST proxy event and goes through the same resolver,
  routes, handlers and Lambda entry point as in AWS.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.exceptions import ClientError

MAX_LOCAL_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit
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
    """Start the local S3 + KMS (moto's server, in this process) and the recordings bucket in it;
    points S3_ENDPOINT_URL and RECORDINGS_KMS_KEY_ARN at them. Returns the server (stop() it)."""
    from videocall.local.s3 import ensure_recordings_bucket, kms_client, s3_client, start_local_s3

    server, endpoint = start_local_s3(port=port)
    os.environ["S3_ENDPOINT_URL"] = endpoint
    bucket = os.environ.setdefault("RECORDINGS_BUCKET", "videocall-local-recordings")
    os.environ["RECORDINGS_KMS_KEY_ARN"] = ensure_recordings_bucket(s3_client(endpoint), kms_client(endpoint), bucket)
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


class LocalServer(HTTPServer):
    """One request at a time, like one Lambda execution environment. Between requests it delivers
    Chime's events (the emulators emitted them) and runs the scheduled jobs on their schedule, on this
    same thread, so one runtime and one database connection are never used by two things at once."""

    reconcile_every_seconds = 60.0
    retention_every_seconds = 24 * 3600.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_reconcile = time.monotonic() + self.reconcile_every_seconds
        self._next_retention = time.monotonic() + self.retention_every_seconds

    def service_actions(self) -> None:
        from videocall.local.stack import BUS

        now = time.monotonic()
        if now >= self._next_reconcile:
            self._next_reconcile = now + self.reconcile_every_seconds
            run_job("reconcile")
        if now >= self._next_retention:
            self._next_retention = now + self.retention_every_seconds
            run_job("apply_retention")
        BUS.deliver()


def run_job(name: str) -> dict[str, Any]:
    """A scheduled job through its Lambda handler, as the schedule invokes it."""
    from importlib import import_module

    from videocall.local.stack import BUS
    from videocall.routes import SCHEDULED_JOBS

    job = next(j for j in SCHEDULED_JOBS if j.name == name)
    result: dict[str, Any] = import_module(job.module).handler({"source": "local.schedule"}, LambdaContextStub())
    BUS.deliver()
    return result


def play_attendee(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What a client does in Chime (join, leave, drop), for a user's attendee in a meeting."""
    from videocall.local.chime_emulator import ChimeEmulator
    from videocall.local.stack import BUS
    from videocall.runtime import runtime

    rt = runtime()
    row = rt.db.fetch_one(
        """SELECT m.attendee_id FROM meeting_attendees m JOIN video_call_sessions s ON s.id = m.session_id
            WHERE s.meeting_id = %(meeting)s AND m.user_id::text = %(user)s""",
        {"meeting": str(body.get("meetingId")), "user": str(body.get("userId"))},
    )
    if row is None:
        return 404, {"error": {"code": "attendee_not_found", "message": "That user has no attendee in that meeting."}}
    chime = rt.chime.client
    if not isinstance(chime, ChimeEmulator):
        return 409, {"error": {"code": "not_local", "message": "Only the Chime emulator can act out clients."}}
    try:
        event = chime.play(str(body["meetingId"]), row["attendee_id"], str(body.get("event")))
    except (ValueError, ClientError) as exc:
        return 400, {"error": {"code": "bad_request", "message": str(exc)}}
    BUS.deliver()
    return 200, {"eventType": event["detail"]["eventType"], "attendeeId": row["attendee_id"]}


def make_server(port: int, host: str = "127.0.0.1") -> HTTPServer:
    from videocall.http import build_resolver, make_lambda_handler
    from videocall.local.stack import BUS

    handler = make_lambda_handler(build_resolver())

    class Handler(BaseHTTPRequestHandler):
        server_version = "videocall-local"

        def _local_control(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
            """Local-only controls (never routes of the API): play attendee events, run a job now."""
            body = json.loads(raw or b"{}") if raw else {}
            if self.command == "POST" and path == "/_local/attendee-events":
                return play_attendee(body)
            if self.command == "POST" and path.startswith("/_local/jobs/"):
                return 200, run_job(path.rsplit("/", 1)[1])
            return 404, {"error": {"code": "route_not_found", "message": "No such local control."}}

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = min(int(self.headers.get("Content-Length") or 0), MAX_LOCAL_BODY)
            raw = self.rfile.read(length) if length else b""
            if split.path.startswith("/_local/"):
                status, payload = self._local_control(split.path, raw)
                result: dict[str, Any] = {"statusCode": status, "body": json.dumps(payload, default=str),
                                          "headers": {"Content-Type": "application/json"}}  # fmt: skip
            else:
                event = rest_event(
                    self.command,
                    split.path,
                    {k: v for k, v in self.headers.items()},
                    raw.decode("utf-8", errors="replace") if raw else None,
                    split.query,
                )
                result = handler(event, LambdaContextStub())  # type: ignore[arg-type]
            body = (result.get("body") or "").encode()
            self.send_response(result["statusCode"])
            multi = result.get("multiValueHeaders") or {k: [v] for k, v in (result.get("headers") or {}).items()}
            for key, values in multi.items():
                for value in values:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            BUS.deliver()  # Chime's events caused by this request, as EventBridge would deliver them

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            # Method, path and status only (the default also logs nothing sensitive, but be explicit).
            print(
                json.dumps(
                    {
                        "local": f"{self.command} {urlsplit(self.path).path}",
                        "status": args[1] if len(args) > 1 else None,
                    }
                )
            )

    return LocalServer((host, port), Handler)
