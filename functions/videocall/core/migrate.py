"""Apply migrations/*.sql in name order, each file in its own transaction.

`schema_migrations` records each applied file with its checksum; a file that changed after it was
applied stops the run (edit by adding a new migration, never by rewriting an applied one).
Two runs started at once are safe: a session-level advisory lock serialises them, and the second
finds the work done.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row

# Any constant works; this one is "videocall" in ASCII, folded into a bigint.
ADVISORY_LOCK_ID = 0x766964656F63616C
NAME_PATTERN = re.compile(r"^(\d{14})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_migrations_dir() -> Path:
    configured = os.environ.get("VIDEOCALL_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    # Repository layout (functions/videocall/migrate.py -> migrations/); the Lambda bundle
    # copies migrations/ next to the package and sets VIDEOCALL_MIGRATIONS_DIR.
    return Path(__file__).resolve().parents[3] / "migrations"


def load_migrations(directory: Path) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = NAME_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named YYYYMMDDHHMMSS_snake_case.sql")
        migrations.append(Migration(version=match.group(1), name=path.name, sql=path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version")
    return migrations


def apply_migrations(database: str | Callable[[], psycopg.Connection[Any]], directory: Path | None = None) -> list[str]:
    """Apply what is pending; return the names applied (empty when up to date).

    `database` is a connection URL or a function returning a new connection (videocall.core.dbauth)."""
    migrations = load_migrations(directory or default_migrations_dir())
    applied_now: list[str] = []
    connection = psycopg.connect(database) if isinstance(database, str) else database()
    with connection as conn:
        conn.autocommit = True
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    text PRIMARY KEY,
                       name       text NOT NULL,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done: dict[str, str] = dict(
                conn.cursor(row_factory=tuple_row).execute("SELECT version, checksum FROM schema_migrations").fetchall()
            )
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(f"{migration.name} changed after it was applied")
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
    return applied_now
