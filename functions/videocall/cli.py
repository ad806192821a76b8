"""`videocall`: the local stack and the operator commands.

videocall serve [--port 8080]       the whole API on http://127.0.0.1:8080 (local S3 on :9090)
videocall migrate                   apply migrations/ to DATABASE_URL (or the embedded database)
videocall dev seed FILE.json        load users and appointments; print ids and ID tokens
videocall dev token FIREBASE_UID    print one emulator ID token
videocall dev attendee MEETING_ID USER_ID joined|left|dropped
                                    play a client's attendee event into the running local server
videocall dev notifications [--limit N] [--clear]
                                    the push notifications the local server would have sent (FCM JSON,
                                    without tokens), oldest first
videocall jobs run reconcile|apply_retention
                                    run a scheduled job now (in the running local server)
videocall privacy export --patient USER_ID --admin FIREBASE_UID
videocall privacy erase (--appointment ID | --patient USER_ID) --admin FIREBASE_UID
videocall privacy audit-trail --patient USER_ID --admin FIREBASE_UID
                                    the admin's right-of-access, erasure and audit-trail tools, against
                                    DATABASE_URL and the stage's AWS (or the local stack)
videocall transcripts complete      finish clinical records left incomplete (Comprehend Medical or Bedrock
                                    failed): what the reconciler also does every minute
videocall redrive --queue-url URL --function-name NAME
                                    hand the events in a dead-letter queue to their function again
videocall openapi [--check]         write (or check) openapi.json from the route table
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi.json"


def openapi_document() -> str:
    from videocall.openapi import document

    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def _serve(args: argparse.Namespace) -> int:
    from videocall.local.server import (
        check_connection_budget,
        local_database_url,
        make_server,
        start_local_storage,
        use_local_environment,
    )

    use_local_environment()
    check_connection_budget(local_database_url(), args.threads)
    storage = start_local_storage(args.s3_port)
    # Requests are served concurrently: each of --threads workers is one execution environment with
    # its own runtime and database connection (see videocall.local.server).
    server = make_server(args.port, args.host, threads=args.threads)
    # A plain `kill` (SIGTERM) shuts down like Ctrl-C: the finally below runs and the embedded
    # PostgreSQL is stopped at exit instead of being left running.
    signal.signal(signal.SIGTERM, _interrupt)
    print(
        json.dumps(
            {
                "listening": f"http://{args.host}:{server.server_address[1]}",
                "threads": args.threads,
                "chime": "emulator",
                "auth": "firebase-emulator",
                "s3": os.environ["S3_ENDPOINT_URL"],
            }
        ),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        storage.stop()
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _post_local(port: int, path: str, body: dict) -> int:
    """Local controls of a running `videocall serve` (it holds the emulators' state)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1


def _attendee(args: argparse.Namespace) -> int:
    return _post_local(args.port, "/_local/attendee-events",
                       {"meetingId": args.meeting_id, "userId": args.user_id, "event": args.event})  # fmt: skip


def _notifications(args: argparse.Namespace) -> int:
    """What `videocall serve` (another process) recorded in the local data directory instead of sending."""
    from videocall.local.push import clear_outbox, read_outbox

    if args.clear:
        clear_outbox()
        return 0
    for line in read_outbox(limit=args.limit):
        print(json.dumps(line, sort_keys=True))
    return 0


def _job(args: argparse.Namespace) -> int:
    return _post_local(args.port, f"/_local/jobs/{args.name}", {})


def _redrive(args: argparse.Namespace) -> int:
    import boto3

    from videocall.ops import redrive

    outcome = redrive(boto3.client("sqs"), boto3.client("lambda"), queue_url=args.queue_url,
                      function_name=args.function_name, limit=args.limit)  # fmt: skip
    print(json.dumps({"redriven": outcome.redriven, "failed": outcome.failed}))
    return 0 if not outcome.failed else 1


def _operator_runtime() -> Any:
    """The runtime an operator command uses: the stage's (from the environment), or the local stack's
    embedded database and the local S3 of the running `videocall serve`."""
    from videocall.core.settings import LOCAL_STAGES
    from videocall.runtime import installed, runtime

    if os.environ.get("STAGE", "local") in LOCAL_STAGES and not installed():
        from videocall.local.server import local_database_url, use_local_environment

        use_local_environment()
        local_database_url()
    return runtime()


def _transcripts(args: argparse.Namespace) -> int:
    print(json.dumps(_operator_runtime().transcripts.complete_unfinished()))
    return 0


def _privacy(args: argparse.Namespace) -> int:
    from videocall.core.errors import DomainError

    privacy = _operator_runtime().privacy
    try:
        if args.action == "export":
            result: object = privacy.export_patient(args.admin, args.patient, None)
        elif args.action == "audit-trail":
            result = privacy.audit_trail(args.admin, args.patient, before_id=None, limit=1000, request_id=None)
        else:
            erased = privacy.erase(args.admin, appointment_id=args.appointment, patient_id=args.patient,
                                   request_id=None)  # fmt: skip
            result = {
                "appointmentIds": erased.appointment_ids,
                "deleted": erased.deleted,
                "pseudonymizedPatient": erased.pseudonymized_patient,
                "nothingFound": erased.nothing_found,
            }
            if erased.nothing_found:
                print("nothing left to erase: an earlier erasure removed it", file=sys.stderr)
    except DomainError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}),
              file=sys.stderr)  # fmt: skip
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from videocall.core.migrate import apply_migrations
    from videocall.local.server import local_database_url

    if os.environ.get("DATABASE_URL"):
        applied = apply_migrations(os.environ["DATABASE_URL"])
    else:
        local_database_url()
        applied = []
    print(json.dumps({"applied": applied}))
    return 0


def _seed(args: argparse.Namespace) -> int:
    from videocall.local.devtools import seed
    from videocall.local.server import local_database_url, use_local_environment

    use_local_environment()
    data = json.loads(Path(args.file).read_text())
    print(json.dumps(seed(local_database_url(), data, os.environ["FIREBASE_PROJECT_ID"]), indent=2))
    return 0


def _token(args: argparse.Namespace) -> int:
    from videocall.local.devtools import emulator_id_token
    from videocall.local.server import use_local_environment

    use_local_environment()
    print(emulator_id_token(args.firebase_uid, os.environ["FIREBASE_PROJECT_ID"]))
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from videocall.local.server import use_local_environment

    use_local_environment()
    document = openapi_document()
    if args.check:
        if not OPENAPI_FILE.exists() or OPENAPI_FILE.read_text() != document:
            print("openapi.json is stale: run `videocall openapi`", file=sys.stderr)
            return 1
        return 0
    OPENAPI_FILE.write_text(document)
    print(f"wrote {OPENAPI_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="videocall", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API locally")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--s3-port", type=int, default=9090)
    serve.add_argument("--threads", type=int, default=8, help="worker threads (each one database connection)")
    serve.set_defaults(run=_serve)
    jobs = commands.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs", required=True)
    job = jobs.add_parser("run", help="run a scheduled job now in the running local server")
    job.add_argument("name", choices=["reconcile", "apply_retention"])
    job.add_argument("--port", type=int, default=8080)
    job.set_defaults(run=_job)
    transcripts = commands.add_parser("transcripts", help="the clinical record of calls")
    transcripts.add_argument("action", choices=["complete"])
    transcripts.set_defaults(run=_transcripts)
    redrive = commands.add_parser("redrive", help="hand a dead-letter queue's events to their function again")
    redrive.add_argument("--queue-url", required=True)
    redrive.add_argument("--function-name", required=True)
    redrive.add_argument("--limit", type=int, default=1000)
    redrive.set_defaults(run=_redrive)
    privacy = commands.add_parser("privacy", help="right of access, erasure, audit trail (admin)")
    privacy.add_argument("action", choices=["export", "erase", "audit-trail"])
    privacy.add_argument("--admin", required=True, help="the admin's Firebase uid (recorded in the audit trail)")
    target = privacy.add_mutually_exclusive_group(required=True)
    target.add_argument("--patient", help="the patient's user id")
    target.add_argument("--appointment", help="erase: one appointment")
    privacy.set_defaults(run=_privacy)
    commands.add_parser("migrate", help="apply migrations").set_defaults(run=_migrate)
    openapi = commands.add_parser("openapi", help="write openapi.json")
    openapi.add_argument("--check", action="store_true")
    openapi.set_defaults(run=_openapi)
    dev = commands.add_parser("dev", help="local development helpers").add_subparsers(dest="dev", required=True)
    seed = dev.add_parser("seed", help="load users and appointments from a JSON file")
    seed.add_argument("file")
    seed.set_defaults(run=_seed)
    token = dev.add_parser("token", help="print an emulator ID token")
    token.add_argument("firebase_uid")
    token.set_defaults(run=_token)
    attendee = dev.add_parser("attendee", help="play an attendee event (joined/left/dropped) into `videocall serve`")
    attendee.add_argument("meeting_id")
    attendee.add_argument("user_id")
    attendee.add_argument("event", choices=["joined", "left", "dropped"])
    attendee.add_argument("--port", type=int, default=8080)
    attendee.set_defaults(run=_attendee)
    notifications = dev.add_parser("notifications", help="the pushes `videocall serve` would have sent (FCM JSON)")
    notifications.add_argument("--limit", type=int, default=20)
    notifications.add_argument("--clear", action="store_true", help="forget the recorded pushes")
    notifications.set_defaults(run=_notifications)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
