"""The composition root: what one execution environment builds once and reuses (settings, the
database connection, the AWS clients, the authenticator, each context's service).

Built lazily: a function builds (and imports) only what its route uses, on the first request, not at import, so
cold starts stay cheap. Tests and the local server install their own with `use_runtime`, handing in
stand-ins (the Chime emulators, a local S3) for the AWS clients.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from videocall.core.auth import FirebaseAuthenticator
from videocall.core.db import Database
from videocall.core.dbauth import connector
from videocall.core.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:  # each context is imported by the property that builds it, on first use
    from videocall.chat.repository import ChatRepository
    from videocall.chat.service import ChatService
    from videocall.chat.storage import AttachmentStore
    from videocall.consent.service import ConsentService
    from videocall.controls.service import ControlsService
    from videocall.core.context import AccessGate
    from videocall.core.records import AppointmentContent
    from videocall.core.storage import ObjectStore
    from videocall.feedback.repository import FeedbackRepository
    from videocall.feedback.service import FeedbackService
    from videocall.meetings.chime import ChimeClient, ChimeGateway
    from videocall.meetings.lifecycle import MeetingLifecycle
    from videocall.meetings.repository import SessionRepository
    from videocall.meetings.service import MeetingService
    from videocall.notifications.sender import PushSender
    from videocall.notifications.service import NotificationService
    from videocall.presence.service import PresenceService
    from videocall.privacy.service import PrivacyService
    from videocall.recordings.pipelines import MediaPipelinesClient, PipelinesGateway
    from videocall.recordings.repository import RecordingRepository
    from videocall.recordings.service import RecordingService
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
        push_sender: PushSender | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self._chime_client = chime_client
        self._pipelines_client = pipelines_client
        self._s3_client = s3_client
        self._medical_client = medical_client
        self._bedrock_client = bedrock_client
        self._push_sender = push_sender
        self.authenticator = FirebaseAuthenticator(settings)

    # --- gateways ----------------------------------------------------------------------------------
    @cached_property
    def chime(self) -> ChimeGateway:
        from videocall.meetings.chime import ChimeGateway

        client = self._chime_client or _aws_client("chime-sdk-meetings", self.settings.chime_control_region)
        return ChimeGateway(client, media_region=self.settings.chime_media_region)

    @cached_property
    def pipelines(self) -> PipelinesGateway:
        from videocall.recordings.pipelines import CaptureSettings, PipelinesGateway, Sink

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
        from videocall.core.storage import ObjectStore

        s = self.settings
        client = self._s3_client or _s3_client(s.recordings_bucket_region, s.s3_endpoint_url)
        return ObjectStore(client, s.recordings_bucket, link_seconds=s.recording_link_seconds)

    @cached_property
    def attachments_store(self) -> AttachmentStore:
        from videocall.chat.storage import AttachmentStore

        s = self.settings
        if not s.is_local and not (s.attachments_bucket and s.attachments_kms_key_arn):
            raise SettingsError("ATTACHMENTS_BUCKET and ATTACHMENTS_KMS_KEY_ARN are required")
        client = self._s3_client or _s3_client(s.recordings_bucket_region, s.s3_endpoint_url)
        return AttachmentStore(
            client, s.attachments_bucket, kms_key_arn=s.attachments_kms_key_arn,
            upload_seconds=s.attachment_upload_seconds, link_seconds=s.attachment_link_seconds,
        )  # fmt: skip

    @cached_property
    def push_sender(self) -> PushSender:
        """FCM through firebase-admin (the credential from Secrets Manager, loaded on the first send);
        disabled, with one warning, where no secret is configured; the local fake in local stages."""
        from videocall.notifications.sender import DisabledSender, FcmSender

        if self._push_sender is not None:
            return self._push_sender
        arn = self.settings.push_credentials_secret_arn
        return FcmSender(arn) if arn else DisabledSender("PUSH_CREDENTIALS_SECRET_ARN is not set")

    @cached_property
    def gate(self) -> AccessGate:
        from videocall.core.context import AccessGate

        return AccessGate(self.db)

    # --- contexts ----------------------------------------------------------------------------------
    @cached_property
    def sessions(self) -> SessionRepository:
        from videocall.meetings.repository import SessionRepository

        return SessionRepository(self.db, stale_seconds=self.settings.stale_create_seconds)

    @cached_property
    def service(self) -> MeetingService:
        """The meetings context's API rules."""
        from videocall.controls.admission import JoinAdmission
        from videocall.meetings.service import MeetingService

        return MeetingService(
            self.sessions, self.chime, self.gate,
            JoinAdmission(waiting_room_default=self.settings.waiting_room_default),
        )  # fmt: skip

    @cached_property
    def controls(self) -> ControlsService:
        from videocall.controls.repository import ControlsRepository
        from videocall.controls.service import ControlsService

        return ControlsService(ControlsRepository(self.db), self.chime, self.gate,
                               lobby_poll_seconds=self.settings.lobby_poll_seconds)  # fmt: skip

    @cached_property
    def feedback_repository(self) -> FeedbackRepository:
        from videocall.feedback.repository import FeedbackRepository

        return FeedbackRepository(self.db)

    @cached_property
    def feedback(self) -> FeedbackService:
        from videocall.feedback.service import FeedbackService

        return FeedbackService(self.feedback_repository, self.gate)

    @cached_property
    def lifecycle(self) -> MeetingLifecycle:
        from videocall.meetings.lifecycle import MeetingLifecycle

        return MeetingLifecycle(self.sessions, self.chime)

    @cached_property
    def notifications(self) -> NotificationService:
        """Devices and pushes: ringing, its cancel, the waiting room's notifications."""
        from videocall.notifications.repository import NotificationRepository
        from videocall.notifications.service import NotificationService

        s = self.settings
        return NotificationService(NotificationRepository(self.db), lambda: self.push_sender,
                                   device_idle_days=s.device_idle_days, ring_days=s.call_ring_days)  # fmt: skip

    @cached_property
    def consent(self) -> ConsentService:
        from videocall.consent.repository import ConsentRepository
        from videocall.consent.service import ConsentService

        return ConsentService(ConsentRepository(self.db), self.gate, source=self.settings.consent_source)

    @cached_property
    def chat_repository(self) -> ChatRepository:
        from videocall.chat.repository import ChatRepository

        return ChatRepository(self.db)

    @cached_property
    def chat(self) -> ChatService:
        from videocall.chat.service import ChatService

        s = self.settings
        return ChatService(
            self.chat_repository, self.gate, store=lambda: self.attachments_store, reactions=s.chat_reactions,
            content_types=s.attachment_content_types, max_bytes=s.attachment_max_bytes,
            scan_required=s.attachment_scan_required, cursor_key=s.chat_cursor_key,
        )  # fmt: skip

    @cached_property
    def recording_repository(self) -> RecordingRepository:
        from videocall.recordings.repository import RecordingRepository

        return RecordingRepository(self.db)

    @cached_property
    def recordings(self) -> RecordingService:
        from videocall.recordings.service import RecordingService

        return RecordingService(
            self.recording_repository, self.pipelines, self.recordings_store, self.gate,
            links_for_patient=self.settings.recording_links_for_patient,
        )  # fmt: skip

    @cached_property
    def presence(self) -> PresenceService:
        from videocall.presence.repository import PresenceRepository
        from videocall.presence.service import PresenceService

        return PresenceService(PresenceRepository(self.db))

    @cached_property
    def transcript_repository(self) -> TranscriptRepository:
        from videocall.transcripts.repository import TranscriptRepository

        return TranscriptRepository(self.db)

    @cached_property
    def transcripts(self) -> TranscriptService:
        from videocall.transcripts.service import TranscriptService

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
        from videocall.transcripts.medical import ComprehendMedicalGateway

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
        from videocall.chat.content import ChatAttachmentsContent, ChatMessagesContent
        from videocall.feedback.content import FeedbackContent
        from videocall.privacy.repository import PrivacyRepository
        from videocall.privacy.service import PrivacyService
        from videocall.recordings.content import RecordingsContent
        from videocall.transcripts.content import TranscriptsContent

        holders: list[AppointmentContent] = [
            RecordingsContent(self.recording_repository, self.recordings_store),
            TranscriptsContent(self.transcript_repository),
            FeedbackContent(self.feedback_repository),
            ChatMessagesContent(self.chat_repository),
            ChatAttachmentsContent(self.chat_repository, lambda: self.attachments_store, self.chat.scan_refusal),
        ]
        return PrivacyService(
            PrivacyRepository(self.db), holders, retention_days=dict(self.settings.retention_days),
            consents=self.consent, devices=self.notifications,
        )  # fmt: skip


def build_runtime(
    settings: Settings,
    *,
    chime_client: ChimeClient | None = None,
    pipelines_client: MediaPipelinesClient | None = None,
    s3_client: Any = None,
    db: Database | None = None,
) -> Runtime:
    medical_client = bedrock_client = push_sender = None
    if settings.chime_backend == "emulator":
        if chime_client is None:
            chime_client, pipelines_client, s3_client = _local_clients(settings, pipelines_client, s3_client)
        medical_client = _local_medical_client()
        push_sender = _local_push_sender(settings)
    return Runtime(
        settings, db or Database(connector(settings)), chime_client=chime_client,
        pipelines_client=pipelines_client, s3_client=s3_client, medical_client=medical_client,
        bedrock_client=bedrock_client, push_sender=push_sender,
    )  # fmt: skip


def _local_clients(settings: Settings, pipelines_client: Any, s3_client: Any) -> tuple[Any, Any, Any]:
    """The emulators, for local and test stages only (Settings refuses them anywhere else)."""
    from videocall.local.stack import local_clients

    return local_clients(settings, pipelines_client=pipelines_client, s3_client=s3_client)


def _local_medical_client() -> Any:
    """The labelled stand-in for Comprehend Medical (local and test stages only)."""
    from videocall.local.comprehend_medical import LocalComprehendMedical

    return LocalComprehendMedical()


def _local_push_sender(settings: Settings) -> Any:
    """The fake FCM (local and test stages only): records what would have been sent, in memory, and for
    `videocall serve` also in the local data directory, where `videocall dev notifications` reads it."""
    from videocall.local.push import LocalPushSender, outbox_path

    return LocalPushSender(outbox_path() if settings.stage == "local" else None)


def _aws_client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    # botocore (standard mode, 2 attempts) retries throttling, 5xx such as ServiceUnavailable and connection
    # errors once; the gateways add capped, jittered backoff for throttling on top (core/aws.py), so a
    # throttled call is sent at most 2 x its gateway attempts, then answered 503 with Retry-After.
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
# A thread's own runtime, ahead of the process's: the local server gives one to each worker thread
# (each its own database connection, never one shared by two requests at once), as Lambda runs one
# request at a time per execution environment. Lambda never sets it: there, one runtime per process.
_thread = threading.local()


def runtime() -> Runtime:
    global _runtime
    own: Runtime | None = getattr(_thread, "runtime", None)
    if own is not None:
        return own
    if _runtime is None:
        _runtime = build_runtime(get_settings())
    return _runtime


def installed() -> bool:
    """Whether a runtime is in place already (tests and the local server install their own)."""
    return _runtime is not None or getattr(_thread, "runtime", None) is not None


def use_thread_runtime(value: Runtime | None) -> None:
    """The calling thread's own runtime from now on (None: back to the process's)."""
    _thread.runtime = value


def use_runtime(value: Runtime | None) -> None:
    global _runtime
    _runtime = value
