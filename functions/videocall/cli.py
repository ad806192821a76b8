"""`videocall`: the local stack and the operator commands.

videocall serve [--port 8080]       the whole API on http://127.0.0.1:8080
videocall migrate                   apply migrations/ to DATABASE_URL (or the embedded database)
videocall dev seed FILE.json        load users and appointments; print ids and ID tokens
videocall dev token FIREBASE_UID    print one emulator ID token
videocall openapi [--check]         write (or check) openapi.json from the route table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi.json"


def openapi_document() -> str:
    from videocall.http import API_TITLE, API_VERSION, build_resolver

    app = build_resolver()
    schema = json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _serve(args: argparse.Namespace) -> int:
    from videocall.local.server import local_database_url, make_server, use_local_environment

    use_local_environment()
    local_database_url()
    server = make_server(args.port, args.host)
    print(
        json.dumps({"listening": f"http://{args.host}:{args.port}", "chime": "emulator", "auth": "firebase-emulator"})
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
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
    serve.set_defaults(run=_serve)
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
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
