"""What one execution environment builds once and reuses: settings, the database connection,
the Chime gateway, the authenticator and the meeting service.

Built on the first request, not at import (cold starts stay cheap); tests and the local server
install their own with `use_runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass

from videocall.core.auth import FirebaseAuthenticator
from videocall.core.db import Database
from videocall.core.dbauth import connector
from videocall.core.settings import Settings, get_settings
from videocall.meetings.chime import ChimeClient, ChimeGateway
from videocall.meetings.repository import SessionRepository
from videocall.meetings.service import MeetingService


@dataclass
class Runtime:
    settings: Settings
    db: Database
    chime: ChimeGateway
    authenticator: FirebaseAuthenticator
    service: MeetingService


def build_runtime(
    settings: Settings, *, chime_client: ChimeClient | None = None, db: Database | None = None
) -> Runtime:
    if db is None:
        db = Database(connector(settings))
    if chime_client is None:
        chime_client = _chime_client(settings)
    chime = ChimeGateway(chime_client, media_region=settings.chime_media_region)
    service = MeetingService(SessionRepository(db, stale_seconds=settings.stale_create_seconds), chime)
    return Runtime(settings, db, chime, FirebaseAuthenticator(settings), service)


def _chime_client(settings: Settings) -> ChimeClient:
    if settings.chime_backend == "emulator":
        from videocall.local.chime_emulator import ChimeEmulator

        return ChimeEmulator(region=settings.chime_control_region)
    import boto3
    from botocore.config import Config

    # Throttling is retried by ChimeGateway (with backoff); botocore retries only connection errors.
    config = Config(
        region_name=settings.chime_control_region,
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=2,
        read_timeout=8,
    )
    client: ChimeClient = boto3.client("chime-sdk-meetings", config=config)
    return client


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(get_settings())
    return _runtime


def use_runtime(value: Runtime | None) -> None:
    global _runtime
    _runtime = value
