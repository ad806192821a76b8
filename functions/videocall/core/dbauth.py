"""How a function gets its database connection, by DB_AUTH:

- `url` (local, tests): DATABASE_URL as given.
- `iam` (Aurora behind RDS Proxy): a fresh IAM auth token per new connection (a local presign, no
  network call), TLS required. DB_HOST (the proxy endpoint), DB_PORT, DB_NAME, DB_USER.
- `secret` (an existing PostgreSQL, e.g. the current Supabase database): host, port, username,
  password and dbname from the Secrets Manager secret DB_SECRET_ARN, read through Powertools
  Parameters and cached for 5 minutes (a rotated password is picked up on the next reconnect).

Every mode returns connections set up the same way: autocommit, dict rows, and server-side prepared
statements for the statements a connection runs again and again (DB_PREPARE_THRESHOLD, psycopg's
default of 5 executions; `off` disables them). A request's first statement joins up to nine tables;
planning it costs ten times its execution (1.0 ms unprepared, 0.09 ms prepared, on the benchmark's
PostgreSQL), so a warm function plans each statement once per connection instead of on every request.
Behind RDS Proxy this is safe: the proxy multiplexes the extended query protocol's named prepared
statements (Parse/Bind/Close) without pinning since November 2023 (AWS Database Blog, "Amazon RDS
Proxy multiplexing support for PostgreSQL Extended Query Protocol"). What still pins is the SQL
`DEALLOCATE ALL` psycopg sends when it drops its cache after a ROLLBACK, DROP or ALTER; the app runs
none of these (every action is autocommit statements; migrations run in their own function and
connection). A statement prepared before a migration changed the shape of its result fails once with
"cached plan must not change result type": core/db.py drops that connection and the request is
retried or answered 503 (see `Database`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from videocall.core.settings import Settings, SettingsError

Connect = Callable[[], "psycopg.Connection[dict[str, Any]]"]
CONNECTION_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "row_factory": dict_row,
    "connect_timeout": 5,
    "application_name": "videocall",
}


def connector(settings: Settings) -> Connect:
    if settings.db_auth == "url":
        if not settings.database_url:
            raise SettingsError("DATABASE_URL is required when DB_AUTH=url")
        url = settings.database_url
        return lambda: psycopg.connect(url, prepare_threshold=settings.db_prepare_threshold, **CONNECTION_OPTIONS)
    if settings.db_auth == "iam":
        return _iam_connector(settings)
    if settings.db_auth == "secret":
        return _secret_connector(settings)
    raise SettingsError(f"DB_AUTH must be url, iam or secret, not {settings.db_auth!r}")


def iam_token_signer(host: str, port: int, user: str, region: str) -> Callable[[], str]:
    """RDS IAM auth tokens, signed locally: what `boto3.client("rds").generate_db_auth_token` makes (a
    SigV4 presigned `connect` for the `rds-db` service, 15 minutes), without building an RDS client: its
    service model is a large part of a cold start, and the token needs none of it. Credentials come from
    the same chain boto3 uses (the function's role in Lambda), refreshed when they rotate."""
    from urllib.parse import urlencode

    import botocore.session
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise SettingsError("no AWS credentials to sign the database auth token with")
    url = f"https://{host}:{port}/?{urlencode({'Action': 'connect', 'DBUser': user})}"

    def token() -> str:
        request = AWSRequest(method="GET", url=url)
        SigV4QueryAuth(credentials.get_frozen_credentials(), "rds-db", region, expires=900).add_auth(request)
        return str(request.url)[len("https://") :]

    return token


def _iam_connector(settings: Settings) -> Connect:
    if not (settings.db_host and settings.db_user):
        raise SettingsError("DB_HOST and DB_USER are required when DB_AUTH=iam")
    sign = iam_token_signer(settings.db_host, settings.db_port, settings.db_user, settings.chime_control_region)

    def connect() -> psycopg.Connection[dict[str, Any]]:
        token = sign()
        return psycopg.connect(
            host=settings.db_host,
            port=settings.db_port,
            dbname=settings.db_name,
            user=settings.db_user,
            password=token,
            sslmode="require",
            prepare_threshold=settings.db_prepare_threshold,
            **CONNECTION_OPTIONS,
        )

    return connect


def _secret_connector(settings: Settings) -> Connect:
    if not settings.db_secret_arn:
        raise SettingsError("DB_SECRET_ARN is required when DB_AUTH=secret")
    arn = settings.db_secret_arn

    def connect() -> psycopg.Connection[dict[str, Any]]:
        from aws_lambda_powertools.utilities import parameters

        secret: dict[str, Any] = parameters.get_secret(arn, transform="json", max_age=300)
        return psycopg.connect(
            host=secret["host"],
            port=int(secret.get("port", 5432)),
            dbname=secret.get("dbname", "postgres"),
            user=secret["username"],
            password=secret["password"],
            sslmode=secret.get("sslmode", "require"),
            prepare_threshold=settings.db_prepare_threshold,
            **CONNECTION_OPTIONS,
        )

    return connect
