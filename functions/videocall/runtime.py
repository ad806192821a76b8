"""The composition root: what one execution environment builds once and reuses (settings, the
database connection, the AWS clients, the authenticator, each context's service).

Built lazily: a function builds only what its route uses, on the first request, not at import, so
cold starts stay cheap. Tests and the local server install their own with `use_runtime`, handing in
stand-ins (the Chime emulators, a local S3) for the AWS clients.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from videocall.consent.repository import ConsentRepository
from videocall.consent.service import ConsentService
from videocall.core.auth import FirebaseAuthenticator
from videocall.core.context import AccessGate
from videocall.core.db import Database
from videocall.core.dbauth import connector
from videocall.core.records import AppointmentContent
from videocall.core.settings import Settings, SettingsError, get_settings
from videocall.core.storage import ObjectStore
from videocall.meetings.chime import ChimeClient, ChimeGateway
from videocall.meetings.lifecycle import MeetingLifecycle
from videocall.meetings.repository import SessionRepository
from videocall.meetings.service import MeetingService
from videocall.presence.repository import PresenceRepository
from videocall.presence.service import PresenceService
from videocall.privacy.repository import PrivacyRepository
from videocall.privacy.service import PrivacyService
from videocall.recordings.content import RecordingsContent
from videocall.recordings.pipelines import CaptureSettings, MediaPipelinesClient, PipelinesGateway, Sink
from videocall.recordings.repository import RecordingRepository
from videocall.recordings.service import RecordingService
from videocall.transcripts.content import TranscriptsContent
from videocall.transcripts.medical import ComprehendMedicalGateway
from videocall.transcripts.repository import TranscriptRepository
from videocall.transcripts.service import TranscriptService


class Runtime:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        chime_client: ChimeClient | None = None,
        pipelines_client: MediaPipelinesClient | None = None,
        s3_client: Any = None,
        medical_client: Any = None,
        bedrock_client: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self._chime_client = chime_client
        self._pipelines_client = pipelines_client
        self._s3_client = s3_client
        self._medical_client = medical_client
        self._bedrock_client = bedrock_client
        self.authenticator = FirebaseAuthenticator(settings)

    # --- gateways ----------------------------------------------------------------------------------
    @cached_property
    def chime(self) -> ChimeGateway:
        client = self._chime_client or _aws_client("chime-sdk-meetings", self.settings.chime_control_region)
        return ChimeGateway(client, media_region=self.settings.chime_media_region)

    @cached_property
    def pipelines(self) -> PipelinesGateway:
        s = self.settings
        if not s.is_local and not (s.recordings_bucket and s.recordings_kms_key_arn and s.pipeline_sink_role_arn):
            raise SettingsError("RECORDINGS_BUCKET, RECORDINGS_KMS_KEY_ARN and PIPELINE_SINK_ROLE_ARN are required")
        client = self._pipelines_client or _aws_client("chime-sdk-media-pipelines", s.chime_control_region)
        return PipelinesGateway(
            client,
            sink=Sink(s.recordings_bucket, s.recordings_kms_key_arn, s.pipeline_sink_role_arn),
            capture=CaptureSettings(
                audio=s.recording_audio, content_share=s.recording_content_share,
                individual_video=s.recording_individual_video, resolution=s.recording_resolution,
            ),
        )  # fmt: skip

    @cached_property
    def recordings_store(self) -> ObjectStore:
        s = self.settings
        client = self._s3_client or _s3_client(s.recordings_bucket_region, s.s3_endpoint_url)
        return ObjectStore(client, s.recordings_bucket, link_seconds=s.recording_link_seconds)

    @cached_property
    def gate(self) -> AccessGate:
        return AccessGate(self.db)

    # --- contexts ----------------------------------------------------------------------------------
    @cached_property
    def sessions(self) -> SessionRepository:
        return SessionRepository(self.db, stale_seconds=self.settings.stale_create_seconds)

    @cached_property
    def service(self) -> MeetingService:
        """The meetings context's API rules."""
        return MeetingService(self.sessions, self.chime, self.gate)

    @cached_property
    def lifecycle(self) -> MeetingLifecycle:
        return MeetingLifecycle(self.sessions, self.chime)

    @cached_property
    def consent(self) -> ConsentService:
        return ConsentService(ConsentRepository(self.db), self.gate, source=self.settings.consent_source)

    @cached_property
    def recording_repository(self) -> RecordingRepository:
        return RecordingRepository(self.db)

    @cached_property
    def recordings(self) -> RecordingService:
        return RecordingService(
            self.recording_repository, self.pipelines, self.recordings_store, self.gate,
            links_for_patient=self.settings.recording_links_for_patient,
        )  # fmt: skip

    @cached_property
    def presence(self) -> PresenceService:
        return PresenceService(PresenceRepository(self.db))

    @cached_property
    def transcript_repository(self) -> TranscriptRepository:
        return TranscriptRepository(self.db)

    @cached_property
    def transcripts(self) -> TranscriptService:
        s = self.settings
        return TranscriptService(
            self.transcript_repository, self.chime, self.recordings_store, self.gate,
            captures=lambda actor, appointment, row, request_id: self.recordings.start_capture_for_transcript(
                actor, appointment, row, request_id),
            transcript_files=lambda session_id: self.recordings.transcript_files(session_id),
            discard_media=lambda session_id: self.recordings.discard_media(session_id),
            release_capture=lambda meeting_id, reason: self.recordings.stop_transcript_capture(
                meeting_id, None, reason, None),
            medical=lambda: self.medical, summary=(lambda: self.summary) if s.clinical_summary else None,
            policy=s.transcription_policy, medical_region=s.transcription_medical_region,
            standard_region=s.transcription_standard_region, specialty=s.transcription_specialty,
            for_patient=s.transcript_for_patient, icd10=s.icd10_inference,
        )  # fmt: skip

    @cached_property
    def medical(self) -> ComprehendMedicalGateway:
        client = self._medical_client or _aws_client("comprehendmedical", self.settings.comprehend_medical_region)
        return ComprehendMedicalGateway(client)

    @cached_property
    def summary(self) -> Any:
        from videocall.transcripts.summary import ClinicalSummaryGateway

        client = self._bedrock_client
        if client is None and self.settings.chime_backend == "emulator":
            from videocall.local.bedrock import LocalBedrockRuntime

            client = LocalBedrockRuntime()
        client = client or _aws_client("bedrock-runtime", self.settings.bedrock_region)
        return ClinicalSummaryGateway(client, model_id=self.settings.bedrock_model_id)

    @cached_property
    def privacy(self) -> PrivacyService:
        # Every context that keeps patient content about an appointment is listed here (core.records).
        holders: list[AppointmentContent] = [
            RecordingsContent(self.recording_repository, self.recordings_store),
            TranscriptsContent(self.transcript_repository),
        ]
        return PrivacyService(
            PrivacyRepository(self.db), holders, retention_days=dict(self.settings.retention_days),
            consents=self.consent,
        )  # fmt: skip


def build_runtime(
    settings: Settings,
    *,
    chime_client: ChimeClient | None = None,
    pipelines_client: MediaPipelinesClient | None = None,
    s3_client: Any = None,
    db: Database | None = None,
) -> Runtime:
    medical_client = bedrock_client = None
    if settings.chime_backend == "emulator":
        if chime_client is None:
            chime_client, pipelines_client, s3_client = _local_clients(settings, pipelines_client, s3_client)
        medical_client = _local_medical_client()
    return Runtime(
        settings, db or Database(connector(settings)), chime_client=chime_client,
        pipelines_client=pipelines_client, s3_client=s3_client, medical_client=medical_client,
        bedrock_client=bedrock_client,
    )  # fmt: skip


def _local_clients(settings: Settings, pipelines_client: Any, s3_client: Any) -> tuple[Any, Any, Any]:
    """The emulators, for local and test stages only (Settings refuses them anywhere else)."""
    from videocall.local.stack import local_clients

    return local_clients(settings, pipelines_client=pipelines_client, s3_client=s3_client)


def _local_medical_client() -> Any:
    """The labelled stand-in for Comprehend Medical (local and test stages only)."""
    from videocall.local.comprehend_medical import LocalComprehendMedical

    return LocalComprehendMedical()


def _aws_client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    # Throttling is retried by the gateways (with backoff); botocore retries only connection errors.
    config = Config(
        region_name=region,
        retries={"mode": "standard", "total_max_attempts": 2},
        connect_timeout=2,
        read_timeout=8,
    )
    return boto3.client(service, config=config)


def _s3_client(region: str, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 (needed for SSE-KMS objects), regional endpoint; path style for a local S3.
    config = Config(
        region_name=region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return boto3.client("s3", config=config, endpoint_url=endpoint_url)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = build_runtime(get_settings())
    return _runtime


def installed() -> bool:
    """Whether a runtime is in place already (tests and the local server install their own)."""
    return _runtime is not None


def use_runtime(value: Runtime | None) -> None:
    global _runtime
    _runtime = value
