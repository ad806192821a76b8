"""How a function gets its database connection, by DB_AUTH:

- `url` (local, tests): DATABASE_URL as given.
- `iam` (Aurora behind RDS Proxy): a fresh IAM auth token per new connection (a local presign, no
  network call), TLS required. DB_HOST (the proxy endpoint), DB_PORT, DB_NAME, DB_USER.
- `secret` (an existing PostgreSQL, e.g. the current Supabase database): host, port, username,
  password and dbname from the Secrets Manager secret DB_SECRET_ARN, read through Powertools
  Parameters and cached for 5 minutes (a rotated password is picked up on the next reconnect).

Every mode returns connections set up the same way (autocommit, dict rows, no server-side prepared
statements so RDS Proxy / pgbouncer can multiplex).
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
    "prepare_threshold": None,
    "connect_timeout": 5,
    "application_name": "videocall",
}


def connector(settings: Settings) -> Connect:
    if settings.db_auth == "url":
        if not settings.database_url:
            raise SettingsError("DATABASE_URL is required when DB_AUTH=url")
        url = settings.database_url
        return lambda: psycopg.connect(url, **CONNECTION_OPTIONS)
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
            **CONNECTION_OPTIONS,
        )

    return connect
