"""The local stack: the whole API on one machine, no AWS account, no Docker.

- Database: DATABASE_URL when set; otherwise an embedded PostgreSQL 16 (pgserver) in
  .videocall/pgdata, started on demand and shared by every `videocall` command; migrations applied.
- Chime: the emulator (videocall.local.chime_emulator) behind the same gateway as the real client.
- Auth: firebase-admin in emulator mode, so local tokens go through the same verify_id_token.
- HTTP: each request becomes an API Gateway REST proxy event and goes through the same resolver,
  routes, handlers and Lambda entry point as in AWS.
"""

from __future__ import annotations

import json
import os
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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


def use_local_environment() -> None:
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)


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


def make_server(port: int, host: str = "127.0.0.1") -> HTTPServer:
    from videocall.http import build_resolver, make_lambda_handler

    handler = make_lambda_handler(build_resolver())

    class Handler(BaseHTTPRequestHandler):
        server_version = "videocall-local"

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = min(int(self.headers.get("Content-Length") or 0), MAX_LOCAL_BODY)
            raw = self.rfile.read(length) if length else b""
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

    return HTTPServer((host, port), Handler)
