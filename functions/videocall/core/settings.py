"""Typed settings, read once per execution environment from the process environment.

Every knob the code has is here, with its default; README.md carries the same table for ops.
A missing or contradictory setting fails loudly at cold start instead of on the first request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Literal

# Stages where emulators (Firebase Auth emulator, the Chime emulator) are acceptable.
LOCAL_STAGES = frozenset({"local", "test"})
EU_REGIONS = frozenset(
    {
        "eu-central-1",
        "eu-central-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
    }
)


class SettingsError(RuntimeError):
    """The environment does not describe a runnable configuration."""


@dataclass(frozen=True)
class Settings:
    stage: str
    firebase_project_id: str
    firebase_auth_emulator_host: str | None
    database_url: str | None
    chime_backend: Literal["aws", "emulator"]
    chime_control_region: str
    chime_media_region: str
    max_body_bytes: int
    stale_create_seconds: int
    db_auth: str = "url"
    db_host: str | None = None
    db_port: int = 5432
    db_name: str = "videocall"
    db_user: str | None = None
    db_secret_arn: str | None = None

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        stage = e.get("STAGE", "local")
        backend = e.get("CHIME_BACKEND", "emulator" if stage in LOCAL_STAGES else "aws")
        if backend not in ("aws", "emulator"):
            raise SettingsError(f"CHIME_BACKEND must be 'aws' or 'emulator', not {backend!r}")
        settings = cls(
            stage=stage,
            firebase_project_id=e.get("FIREBASE_PROJECT_ID", "videocall-local" if stage in LOCAL_STAGES else ""),
            firebase_auth_emulator_host=e.get("FIREBASE_AUTH_EMULATOR_HOST") or None,
            database_url=e.get("DATABASE_URL") or None,
            chime_backend=backend,  # type: ignore[arg-type]
            chime_control_region=e.get("CHIME_CONTROL_REGION", "eu-central-1"),
            chime_media_region=e.get("CHIME_MEDIA_REGION", "eu-central-1"),
            max_body_bytes=int(e.get("MAX_BODY_BYTES", "65536")),
            stale_create_seconds=int(e.get("STALE_CREATE_SECONDS", "60")),
            db_auth=e.get("DB_AUTH", "url"),
            db_host=e.get("DB_HOST") or None,
            db_port=int(e.get("DB_PORT", "5432")),
            db_name=e.get("DB_NAME", "videocall"),
            db_user=e.get("DB_USER") or None,
            db_secret_arn=e.get("DB_SECRET_ARN") or None,
        )
        settings.check()
        return settings

    def check(self) -> None:
        if not self.firebase_project_id:
            raise SettingsError("FIREBASE_PROJECT_ID is required")
        if not self.is_local:
            # Emulator mode makes firebase-admin accept unsigned tokens: never in a deployed stage.
            if self.firebase_auth_emulator_host:
                raise SettingsError(f"FIREBASE_AUTH_EMULATOR_HOST is set in deployed stage {self.stage!r}")
            if self.chime_backend != "aws":
                raise SettingsError(f"the Chime emulator cannot serve deployed stage {self.stage!r}")
            if self.chime_media_region not in EU_REGIONS:
                raise SettingsError(f"CHIME_MEDIA_REGION {self.chime_media_region!r} is outside the EU")


@cache
def get_settings() -> Settings:
    return Settings.from_env()
