"""Deployment settings, read from CDK context (cdk.json defaults, `-c key=value` per deploy).

| context key | default | meaning |
|---|---|---|
| stage | dev | stack name suffix; `prod` turns on deletion protection, WAF, multi-AZ |
| account | (environment-agnostic) | AWS account id |
| region | eu-central-1 | everything deploys here (Chime control + media region) |
| databaseMode | aurora | `aurora` (Serverless v2 + RDS Proxy, IAM auth) or `external` (existing PostgreSQL) |
| externalDatabaseSecretArn | - | databaseMode=external: secret {host, port, username, password, dbname} |
| pushCredentialsSecretArn | - | an existing secret with the FCM service-account JSON (else the stack makes one) |
| recordingRetentionDays | 90 | the retention job deletes recordings after this many days (lifecycle: +7) |
| emptyMeetingGraceSeconds | 120 | a recorded meeting nobody is connected to is ended after this long (>= 30) |
| recordingLinkSeconds | 900 | lifetime of a recording download link (60-3600) |
| recordingLinksForPatient | false | patients get download links to their own recordings (else clinical staff only) |
| consentSource | patient | who records consent: `patient` (in the app) or `external` (through the API) |
| recordingIndividualVideo | false | capture each attendee's own video stream besides the composited grid |
| logRetentionDays | 365 | CloudWatch Logs retention for functions, API access logs, flow logs |
| alarmEmails | [] | subscribers of the alarm topic |
| wafEnabled | stage == prod | attach a WAF web ACL with AWS managed rules |
| transcriptionRegion | eu-west-1 | Transcribe Medical streaming region (the only EU region Chime offers it in) |
| transcriptionStandardRegion | eu-central-1 | standard Transcribe region, for what Transcribe Medical lacks (EU) |
| transcriptionPolicy | medical-en-us | `medical-en-us` (en-US: Medical, others: standard) or `standard-only` |
| transcriptionSpecialty | PRIMARYCARE | Transcribe Medical specialty |
| transcriptForPatient | false | patients may read their own transcript (else clinical staff only) |
| transcriptRetentionDays | 90 | the retention job deletes transcripts and clinical records after this many days |
| chatRetentionDays | 90 | the retention job deletes chat messages and attachments after this many days (lifecycle +7) |
| comprehendMedicalRegion | eu-west-1 | Comprehend Medical region (not offered in eu-central-1) |
| icd10Inference | true | ICD-10-CM candidates (comprehendmedical:InferICD10CM) besides the medical entities |
| clinicalSummary | false | a draft SOAP note from Amazon Bedrock; off: no Bedrock permission at all |
| bedrockRegion | eu-central-1 | Bedrock runtime region (EU) |
| bedrockModelId | anthropic.claude-3-haiku-20240307-v1:0 | the one model IAM allows (`eu.`: EU inference profile) |
| firebaseProjectId | (required) | audience of the app's ID tokens |
| corsOrigins | [] | origins allowed to call the API from a browser/web view; none = no CORS |
| reservedConcurrency | 20 | per API function: caps load on Chime (10 req/s) and database connections |
| apiRateLimit / apiBurstLimit | 50 / 100 | stage throttling, requests per second |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from constructs import Node
from videocall.core.settings import MEDICAL_TRANSCRIPTION_REGIONS

EU_REGIONS = frozenset(
    {"eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "eu-south-1", "eu-south-2"}
)

# Transcribe Medical specialties (EngineTranscribeMedicalSettings.Specialty).
TRANSCRIPTION_SPECIALTIES = frozenset({"PRIMARYCARE", "CARDIOLOGY", "NEUROLOGY", "ONCOLOGY", "RADIOLOGY", "UROLOGY"})
# Bedrock's cross-region (system-defined) inference profile ids: "<geography>.<foundation model id>".
# Only "eu." keeps the request inside the EU; "global." routes to any commercial region.
INFERENCE_PROFILE_GEOGRAPHIES = frozenset({"eu", "us", "us-gov", "apac", "jp", "au", "ca", "global"})


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StageConfig:
    stage: str = "dev"
    account: str | None = None
    region: str = "eu-central-1"
    database_mode: str = "aurora"
    external_database_secret_arn: str | None = None
    push_credentials_secret_arn: str | None = None
    recording_retention_days: int = 90
    empty_meeting_grace_seconds: int = 120
    recording_link_seconds: int = 900
    recording_links_for_patient: bool = False
    consent_source: str = "patient"
    recording_individual_video: bool = False
    log_retention_days: int = 365
    alarm_emails: tuple[str, ...] = ()
    waf_enabled: bool | None = None
    transcription_region: str = "eu-west-1"
    transcription_standard_region: str = "eu-central-1"
    transcription_policy: str = "medical-en-us"
    transcription_specialty: str = "PRIMARYCARE"
    transcript_for_patient: bool = False
    transcript_retention_days: int = 90
    chat_retention_days: int = 90
    comprehend_medical_region: str = "eu-west-1"
    icd10_inference: bool = True
    clinical_summary: bool = False
    bedrock_region: str = "eu-central-1"
    bedrock_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    firebase_project_id: str = ""
    cors_origins: tuple[str, ...] = ()
    reserved_concurrency: int = 20
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.stage == "prod"

    @property
    def waf(self) -> bool:
        return self.is_prod if self.waf_enabled is None else self.waf_enabled

    @property
    def bedrock_geography(self) -> str | None:
        """The geography of a cross-region inference profile id (`eu` of `eu.anthropic...`), else None."""
        return inference_profile_geography(self.bedrock_model_id)

    def check(self) -> StageConfig:
        if not self.firebase_project_id:
            raise ConfigError("context firebaseProjectId is required")
        if self.database_mode not in ("aurora", "external"):
            raise ConfigError("databaseMode must be aurora or external")
        if self.database_mode == "external" and not self.external_database_secret_arn:
            raise ConfigError("databaseMode=external needs externalDatabaseSecretArn")
        if self.push_credentials_secret_arn and not self.push_credentials_secret_arn.startswith("arn:aws"):
            raise ConfigError("pushCredentialsSecretArn must be a Secrets Manager secret's full ARN")
        for name in (
            "region",
            "transcription_region",
            "transcription_standard_region",
            "comprehend_medical_region",
            "bedrock_region",
        ):
            if getattr(self, name) not in EU_REGIONS:
                raise ConfigError(f"{name} {getattr(self, name)!r} is outside the EU (GDPR)")
        if self.recording_retention_days < 1:
            raise ConfigError("recordingRetentionDays must be at least 1")
        if self.transcript_retention_days < 1:
            raise ConfigError("transcriptRetentionDays must be at least 1")
        if self.chat_retention_days < 1:
            raise ConfigError("chatRetentionDays must be at least 1")
        # The same checks the functions make at cold start (videocall.core.settings), refused at synth instead.
        if self.transcription_region not in MEDICAL_TRANSCRIPTION_REGIONS:
            raise ConfigError(
                f"transcriptionRegion {self.transcription_region!r} offers no Transcribe Medical streaming for "
                f"Chime (EU: {', '.join(sorted(MEDICAL_TRANSCRIPTION_REGIONS & EU_REGIONS))})"
            )
        if self.transcription_policy not in ("medical-en-us", "standard-only"):
            raise ConfigError("transcriptionPolicy must be medical-en-us or standard-only")
        if self.transcription_specialty not in TRANSCRIPTION_SPECIALTIES:
            raise ConfigError(f"transcriptionSpecialty must be one of {', '.join(sorted(TRANSCRIPTION_SPECIALTIES))}")
        if not self.bedrock_model_id:
            raise ConfigError("bedrockModelId is required")
        if self.bedrock_geography not in (None, "eu"):
            raise ConfigError(
                f"bedrockModelId {self.bedrock_model_id!r} is a {self.bedrock_geography!r} inference profile: it "
                "routes requests outside the EU (GDPR); use the foundation model id or its eu. profile"
            )
        # The same bounds the functions check at cold start (videocall.core.settings): refused at synth instead.
        if self.empty_meeting_grace_seconds < 30:
            raise ConfigError("emptyMeetingGraceSeconds must be at least 30 (longer than a network switch)")
        if not 60 <= self.recording_link_seconds <= 3600:
            raise ConfigError("recordingLinkSeconds must be between 60 and 3600")
        if self.consent_source not in ("patient", "external"):
            raise ConfigError("consentSource must be patient or external")
        return self

    @classmethod
    def from_context(cls, node: Node) -> StageConfig:
        def get(key: str, default: Any = None) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        def as_list(value: Any) -> tuple[str, ...]:
            if isinstance(value, str):
                value = json.loads(value) if value.startswith("[") else [v for v in value.split(",") if v]
            return tuple(value or ())

        def as_bool(value: Any) -> bool | None:
            if value is None:
                return None
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")

        return cls(
            stage=str(get("stage", "dev")),
            account=get("account"),
            region=str(get("region", "eu-central-1")),
            database_mode=str(get("databaseMode", "aurora")),
            external_database_secret_arn=get("externalDatabaseSecretArn"),
            push_credentials_secret_arn=get("pushCredentialsSecretArn"),
            recording_retention_days=int(get("recordingRetentionDays", 90)),
            empty_meeting_grace_seconds=int(get("emptyMeetingGraceSeconds", 120)),
            recording_link_seconds=int(get("recordingLinkSeconds", 900)),
            recording_links_for_patient=bool(as_bool(get("recordingLinksForPatient", False))),
            consent_source=str(get("consentSource", "patient")),
            recording_individual_video=bool(as_bool(get("recordingIndividualVideo", False))),
            log_retention_days=int(get("logRetentionDays", 365)),
            alarm_emails=as_list(get("alarmEmails", [])),
            waf_enabled=as_bool(get("wafEnabled")),
            transcription_region=str(get("transcriptionRegion", "eu-west-1")),
            transcription_standard_region=str(get("transcriptionStandardRegion", "eu-central-1")),
            transcription_policy=str(get("transcriptionPolicy", "medical-en-us")),
            transcription_specialty=str(get("transcriptionSpecialty", "PRIMARYCARE")),
            transcript_for_patient=bool(as_bool(get("transcriptForPatient", False))),
            transcript_retention_days=int(get("transcriptRetentionDays", 90)),
            chat_retention_days=int(get("chatRetentionDays", 90)),
            comprehend_medical_region=str(get("comprehendMedicalRegion", "eu-west-1")),
            icd10_inference=bool(as_bool(get("icd10Inference", True))),
            clinical_summary=bool(as_bool(get("clinicalSummary", False))),
            bedrock_region=str(get("bedrockRegion", "eu-central-1")),
            bedrock_model_id=str(get("bedrockModelId", "anthropic.claude-3-haiku-20240307-v1:0")),
            firebase_project_id=str(get("firebaseProjectId", "")),
            cors_origins=as_list(get("corsOrigins", [])),
            reserved_concurrency=int(get("reservedConcurrency", 20)),
            api_rate_limit=int(get("apiRateLimit", 50)),
            api_burst_limit=int(get("apiBurstLimit", 100)),
        ).check()


def inference_profile_geography(model_id: str) -> str | None:
    """`eu` for `eu.anthropic.claude-...` (a cross-region inference profile id), None for a foundation model id
    (`anthropic.claude-...`: provider, then model)."""
    head, dot, rest = model_id.partition(".")
    return head if dot and "." in rest and head in INFERENCE_PROFILE_GEOGRAPHIES else None
