"""One PostgreSQL connection per execution environment, reused across invocations.

A broken connection (the database restarted, the proxy dropped it, a freeze/thaw killed the
socket) is closed and replaced on the next call, and so is one whose prepared statements a
migration made stale ("cached plan must not change result type": a statement prepared before a
column it returns changed type); the new connection prepares afresh, and reads are retried once on
it. Every statement that goes to the server counts as one round trip in `round_trips`: tests and
benchmarks read it to hold each action to its budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from videocall.core.errors import DatabaseUnavailable
from videocall.core.observability import logger

Row = dict[str, Any]


class Database:
    def __init__(self, connect: Callable[[], psycopg.Connection[Row]]) -> None:
        self._connect = connect
        self._conn: psycopg.Connection[Row] | None = None
        self.round_trips = 0

    def connection(self) -> psycopg.Connection[Row]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                logger.info("replacing broken database connection")
                self._conn.close()
            try:
                self._conn = self._connect()
            except psycopg.OperationalError as exc:
                self._conn = None
                raise DatabaseUnavailable() from exc
        return self._conn

    @contextmanager
    def _guard(self) -> Iterator[psycopg.Connection[Row]]:
        conn = self.connection()
        try:
            yield conn
        except psycopg.OperationalError as exc:
            # The connection is most likely gone; drop it so the next call reconnects.
            logger.warning("database operational error", extra={"sqlstate": getattr(exc, "sqlstate", None)})
            conn.close()
            raise DatabaseUnavailable() from exc
        except psycopg.errors.FeatureNotSupported as exc:
            if "cached plan" not in str(exc):
                raise
            # A prepared statement outlived a schema change (a deploy's migration): start afresh.
            logger.warning("prepared statement outlived a schema change", extra={"sqlstate": exc.sqlstate})
            conn.close()
            raise DatabaseUnavailable() from exc

    def fetch_one(self, sql: str, params: Any = None) -> Row | None:
        with self._guard() as conn:
            self.round_trips += 1
            return conn.execute(sql, params).fetchone()

    def read_one(self, sql: str, params: Any = None) -> Row | None:
        """fetch_one for a read-only statement: if the reused connection turns out to be dead (the
        usual state after a long freeze of the execution environment), reconnect and read once more
        instead of failing the request."""
        try:
            return self.fetch_one(sql, params)
        except DatabaseUnavailable:
            return self.fetch_one(sql, params)

    def fetch_all(self, sql: str, params: Any = None) -> list[Row]:
        with self._guard() as conn:
            self.round_trips += 1
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Any = None) -> int:
        with self._guard() as conn:
            self.round_trips += 1
            return conn.execute(sql, params).rowcount

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
