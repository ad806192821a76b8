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


# Transcribe Medical streaming regions Chime accepts (service model), without "auto".
MEDICAL_TRANSCRIPTION_REGIONS = frozenset(
    {"us-east-1", "us-east-2", "us-west-2", "ap-southeast-2", "ca-central-1", "eu-west-1"}
)
AUDIO_MUX_TYPES = ("AudioOnly", "AudioWithActiveSpeakerVideo", "AudioWithCompositedVideo")


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _threshold(value: str) -> int | None:
    """DB_PREPARE_THRESHOLD: a whole number of executions, or off."""
    value = value.strip().lower()
    if value in ("off", "none", "never", ""):
        return None
    if not value.isdigit():
        raise SettingsError(f"DB_PREPARE_THRESHOLD must be a whole number or 'off', not {value!r}")
    return int(value)


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
    # Server-side prepared statements: a statement run this many times on a connection is prepared
    # (planned once per connection); None: never. See core/dbauth.py for why this is safe behind RDS Proxy.
    db_prepare_threshold: int | None = 5
    # --- recording (recordings context) ---
    recordings_bucket: str = ""
    recordings_bucket_region: str = ""
    recordings_kms_key_arn: str = ""
    pipeline_sink_role_arn: str = ""
    s3_endpoint_url: str | None = None  # local stages only: the local S3
    recording_audio: str = "AudioWithCompositedVideo"
    recording_content_share: bool = True
    recording_individual_video: bool = False
    recording_resolution: str = "FHD"
    recording_link_seconds: int = 900
    recording_links_for_patient: bool = False
    recording_stuck_seconds: int = 3600
    # --- consent ---
    consent_source: str = "patient"
    # --- transcription (transcripts context) ---
    transcription_policy: str = "medical-en-us"  # or "standard-only": every language on standard Transcribe
    transcription_medical_region: str = "eu-west-1"
    transcription_standard_region: str = "eu-central-1"
    transcription_specialty: str = "PRIMARYCARE"
    transcript_for_patient: bool = False
    icd10_inference: bool = True
    comprehend_medical_region: str = "eu-west-1"
    clinical_summary: bool = False
    bedrock_region: str = "eu-central-1"
    bedrock_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    # --- the call's life ---
    empty_meeting_grace_seconds: int = 120
    reconcile_calls_per_second: float = 5.0
    reconcile_batch: int = 200
    # --- chat (chat context): the attachments bucket and the chat's knobs ---
    attachments_bucket: str = ""
    attachments_kms_key_arn: str = ""
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_content_types: tuple[str, ...] = ("image/jpeg", "image/png", "application/pdf")
    attachment_upload_seconds: int = 300  # lifetime of the presigned POST
    attachment_link_seconds: int = 300  # lifetime of a download link
    # Serve only objects GuardDuty tagged NO_THREATS_FOUND (a not-yet-scanned one: 409 attachment_not_scanned).
    # On in every deployed stage; off locally, where nothing scans (a threat tag is refused either way).
    attachment_scan_required: bool = True
    chat_reactions: tuple[str, ...] = ("\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f62e", "\U0001f622",
                                       "\U0001f64f")  # fmt: skip
    chat_cursor_key: str = ""  # HMAC key of history cursors (tamper detection; authorization never relies on it)
    # --- controls: the waiting room (per appointment, set by its provider on create; this is the default) ---
    waiting_room_default: bool = False
    lobby_poll_seconds: int = 5  # Retry-After for a patient waiting in the lobby
    # --- notifications: the FCM service-account JSON (set only on the functions that send pushes) ---
    push_credentials_secret_arn: str | None = None
    device_idle_days: int = 270  # FCM refuses a token inactive for 270 days
    call_ring_days: int = 30
    # --- retention, per kind of content ---
    retention_days: tuple[tuple[str, int], ...] = (("recordings", 90), ("transcripts", 90))

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES

    def retention_for(self, kind: str) -> int:
        return dict(self.retention_days)[kind]

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
            db_prepare_threshold=_threshold(e.get("DB_PREPARE_THRESHOLD", "5")),
            recordings_bucket=e.get("RECORDINGS_BUCKET", "videocall-local-recordings" if stage in LOCAL_STAGES else ""),
            recordings_bucket_region=e.get("RECORDINGS_BUCKET_REGION", e.get("CHIME_MEDIA_REGION", "eu-central-1")),
            recordings_kms_key_arn=e.get("RECORDINGS_KMS_KEY_ARN", ""),
            pipeline_sink_role_arn=e.get("PIPELINE_SINK_ROLE_ARN", ""),
            s3_endpoint_url=e.get("S3_ENDPOINT_URL") or None,
            recording_audio=e.get("RECORDING_AUDIO", "AudioWithCompositedVideo"),
            recording_content_share=_flag(e.get("RECORDING_CONTENT_SHARE", "true")),
            recording_individual_video=_flag(e.get("RECORDING_INDIVIDUAL_VIDEO", "false")),
            recording_resolution=e.get("RECORDING_RESOLUTION", "FHD"),
            recording_link_seconds=int(e.get("RECORDING_LINK_SECONDS", "900")),
            recording_links_for_patient=_flag(e.get("RECORDING_LINKS_FOR_PATIENT", "false")),
            recording_stuck_seconds=int(e.get("RECORDING_STUCK_SECONDS", "3600")),
            consent_source=e.get("CONSENT_SOURCE", "patient"),
            empty_meeting_grace_seconds=int(e.get("EMPTY_MEETING_GRACE_SECONDS", "120")),
            reconcile_calls_per_second=float(e.get("RECONCILE_CALLS_PER_SECOND", "5")),
            reconcile_batch=int(e.get("RECONCILE_BATCH", "200")),
            transcription_policy=e.get("TRANSCRIPTION_POLICY", "medical-en-us"),
            transcription_medical_region=e.get("TRANSCRIPTION_MEDICAL_REGION", "eu-west-1"),
            transcription_standard_region=e.get("TRANSCRIPTION_STANDARD_REGION", "eu-central-1"),
            transcription_specialty=e.get("TRANSCRIPTION_SPECIALTY", "PRIMARYCARE"),
            transcript_for_patient=_flag(e.get("TRANSCRIPT_FOR_PATIENT", "false")),
            icd10_inference=_flag(e.get("ICD10_INFERENCE", "true")),
            comprehend_medical_region=e.get("COMPREHEND_MEDICAL_REGION", "eu-west-1"),
            clinical_summary=_flag(e.get("CLINICAL_SUMMARY", "false")),
            bedrock_region=e.get("BEDROCK_REGION", "eu-central-1"),
            bedrock_model_id=e.get("BEDROCK_MODEL_ID", "anthropic.claude-3-haiku-20240307-v1:0"),
            attachments_bucket=e.get(
                "ATTACHMENTS_BUCKET", "videocall-local-attachments" if stage in LOCAL_STAGES else ""
            ),
            attachments_kms_key_arn=e.get("ATTACHMENTS_KMS_KEY_ARN", ""),
            attachment_max_bytes=int(e.get("ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024))),
            attachment_content_types=tuple(
                t.strip()
                for t in e.get("ATTACHMENT_CONTENT_TYPES", "image/jpeg,image/png,application/pdf").split(",")
                if t.strip()
            ),
            attachment_upload_seconds=int(e.get("ATTACHMENT_UPLOAD_SECONDS", "300")),
            attachment_link_seconds=int(e.get("ATTACHMENT_LINK_SECONDS", "300")),
            attachment_scan_required=_flag(
                e.get("ATTACHMENT_SCAN_REQUIRED", "false" if stage in LOCAL_STAGES else "true")
            ),
            chat_reactions=tuple(
                r.strip() for r in e.get("CHAT_REACTIONS", ",".join(cls.chat_reactions)).split(",") if r.strip()
            ),
            chat_cursor_key=e.get("CHAT_CURSOR_KEY", ""),
            waiting_room_default=_flag(e.get("WAITING_ROOM_DEFAULT", "false")),
            lobby_poll_seconds=int(e.get("LOBBY_POLL_SECONDS", "5")),
            push_credentials_secret_arn=e.get("PUSH_CREDENTIALS_SECRET_ARN") or None,
            device_idle_days=int(e.get("DEVICE_IDLE_DAYS", "270")),
            call_ring_days=int(e.get("RETENTION_DAYS_CALL_RINGS", "30")),
            retention_days=(
                ("recordings", int(e.get("RETENTION_DAYS_RECORDINGS", "90"))),
                ("transcripts", int(e.get("RETENTION_DAYS_TRANSCRIPTS", "90"))),
                # chat: messages and their attachments share one setting
                ("messages", int(e.get("RETENTION_DAYS_CHAT", "90"))),
                ("attachments", int(e.get("RETENTION_DAYS_CHAT", "90"))),
                ("feedback", int(e.get("RETENTION_DAYS_FEEDBACK", "365"))),
            ),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if not self.firebase_project_id:
            raise SettingsError("FIREBASE_PROJECT_ID is required")
        if self.recordings_bucket_region != self.chime_media_region:
            # Chime writes captures only to a bucket in the meeting's media region.
            raise SettingsError(
                f"RECORDINGS_BUCKET_REGION {self.recordings_bucket_region!r} must be the media region "
                f"{self.chime_media_region!r}"
            )
        if self.recording_audio not in AUDIO_MUX_TYPES:
            raise SettingsError(f"RECORDING_AUDIO must be one of {', '.join(AUDIO_MUX_TYPES)}")
        if self.recording_resolution not in ("HD", "FHD"):
            raise SettingsError("RECORDING_RESOLUTION must be HD or FHD")
        if self.consent_source not in ("patient", "external"):
            raise SettingsError("CONSENT_SOURCE must be 'patient' or 'external'")
        if not 60 <= self.recording_link_seconds <= 3600:
            raise SettingsError("RECORDING_LINK_SECONDS must be between 60 and 3600")
        if self.empty_meeting_grace_seconds < 30:
            raise SettingsError("EMPTY_MEETING_GRACE_SECONDS must be at least 30 (longer than a network switch)")
        if self.transcription_policy not in ("medical-en-us", "standard-only"):
            raise SettingsError("TRANSCRIPTION_POLICY must be 'medical-en-us' or 'standard-only'")
        if self.transcription_medical_region not in MEDICAL_TRANSCRIPTION_REGIONS:
            raise SettingsError(f"TRANSCRIPTION_MEDICAL_REGION must be one of {sorted(MEDICAL_TRANSCRIPTION_REGIONS)}")
        if self.transcription_standard_region == "auto" or self.transcription_medical_region == "auto":
            raise SettingsError("transcription regions must be named: 'auto' can leave the EU")
        if (
            not self.is_local
            and not {self.transcription_medical_region, self.transcription_standard_region} <= EU_REGIONS
        ):
            raise SettingsError("transcription regions must be EU regions in deployed stages")
        if any(days < 1 for _, days in self.retention_days):
            raise SettingsError("retention days must be at least 1")
        if not 1 <= self.attachment_max_bytes <= 5 * 1024**3:
            raise SettingsError("ATTACHMENT_MAX_BYTES must be between 1 and 5 GiB (one POST upload)")
        if not self.attachment_content_types or not self.chat_reactions:
            raise SettingsError("ATTACHMENT_CONTENT_TYPES and CHAT_REACTIONS must not be empty")
        if not 60 <= self.attachment_link_seconds <= 3600 or not 60 <= self.attachment_upload_seconds <= 3600:
            raise SettingsError("ATTACHMENT_LINK_SECONDS and ATTACHMENT_UPLOAD_SECONDS must be between 60 and 3600")
        if not self.is_local:
            # Emulator mode makes firebase-admin accept unsigned tokens: never in a deployed stage.
            if self.firebase_auth_emulator_host:
                raise SettingsError(f"FIREBASE_AUTH_EMULATOR_HOST is set in deployed stage {self.stage!r}")
            if self.chime_backend != "aws":
                raise SettingsError(f"the Chime emulator cannot serve deployed stage {self.stage!r}")
            if self.chime_media_region not in EU_REGIONS:
                raise SettingsError(f"CHIME_MEDIA_REGION {self.chime_media_region!r} is outside the EU")
            if self.s3_endpoint_url:
                raise SettingsError(f"S3_ENDPOINT_URL (a local S3) is set in deployed stage {self.stage!r}")
            if not self.attachment_scan_required:
                # Without the scan tag check a file GuardDuty has not looked at yet would be handed out.
                raise SettingsError(f"ATTACHMENT_SCAN_REQUIRED cannot be off in deployed stage {self.stage!r}")


@cache
def get_settings() -> Settings:
    return Settings.from_env()
