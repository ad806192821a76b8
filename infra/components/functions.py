"""Lambda functions, all made the same way: Python 3.13 on arm64 (cheaper per ms, and every
dependency ships aarch64 wheels), X-Ray tracing, in the VPC, their own KMS-encrypted log group with
retention, their own role holding only what they are granted afterwards: the AWS actions of its
route (`aws_actions`), each on the resource type the Service Authorization Reference gives it
(infra/components/iam.py), plus what its wiring needs (database, dead-letter queue).

Sizing (see README "Ops"): API functions 512 MB / 15 s. 512 MB buys the CPU share that keeps cold
starts (firebase-admin, pydantic, boto3 imports) near a second; 15 s covers the worst path (Chime
retries with backoff plus a database reconnect) well inside API Gateway's 29 s. Event handlers
256 MB / 30 s, except those in events.EVENT_ROUTE_SIZING (chime_pipeline_events: 512 MB / 120 s, it
builds transcripts and calls Comprehend Medical and Bedrock); scheduled jobs 512 MB with their own
timeout (ScheduledJob.timeout_seconds); the migration runner 512 MB / 5 min.

Every function is told where recordings go (bucket, region, key, sink role), the recording knobs
from context (retention, grace period, link lifetime, consent source, ...) and the transcription and
clinical-record knobs (policy, regions, ICD-10, summary model, ...): videocall.core.settings reads them.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.components.iam import Grant, RecordingsResources, grants_for, switched_off
from infra.config import StageConfig

TRACING = "xray:PutTraceSegments/PutTelemetryRecords (active tracing)"


class FunctionFactory(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        code: lambda_.Code,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        recordings: RecordingsResources,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self._recordings = recordings
        self._code = code
        self._vpc = vpc
        self._sg = security_group
        self._key = key
        self._environment = {
            "STAGE": config.stage,
            "FIREBASE_PROJECT_ID": config.firebase_project_id,
            "CHIME_BACKEND": "aws",
            "CHIME_CONTROL_REGION": config.region,
            "CHIME_MEDIA_REGION": config.region,
            "POWERTOOLS_SERVICE_NAME": "videocall",
            "POWERTOOLS_METRICS_NAMESPACE": "Telehealth/VideoCall",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "VIDEOCALL_MIGRATIONS_DIR": "/var/task/migrations",
            # Recording: where, under which key, through which role; and the knobs ops may turn.
            "RECORDINGS_BUCKET": recordings.bucket.bucket_name,
            "RECORDINGS_BUCKET_REGION": config.region,
            "RECORDINGS_KMS_KEY_ARN": recordings.key.key_arn,
            "PIPELINE_SINK_ROLE_ARN": recordings.sink_role.role_arn,
            "RETENTION_DAYS_RECORDINGS": str(config.recording_retention_days),
            "EMPTY_MEETING_GRACE_SECONDS": str(config.empty_meeting_grace_seconds),
            "RECORDING_LINK_SECONDS": str(config.recording_link_seconds),
            "RECORDING_LINKS_FOR_PATIENT": _flag(config.recording_links_for_patient),
            "RECORDING_INDIVIDUAL_VIDEO": _flag(config.recording_individual_video),
            "CONSENT_SOURCE": config.consent_source,
            # Transcription (Chime live transcription, Transcribe Medical / Transcribe in the EU).
            "TRANSCRIPTION_POLICY": config.transcription_policy,
            "TRANSCRIPTION_MEDICAL_REGION": config.transcription_region,
            "TRANSCRIPTION_STANDARD_REGION": config.transcription_standard_region,
            "TRANSCRIPTION_SPECIALTY": config.transcription_specialty,
            "TRANSCRIPT_FOR_PATIENT": _flag(config.transcript_for_patient),
            "RETENTION_DAYS_TRANSCRIPTS": str(config.transcript_retention_days),
            # The clinical record: Comprehend Medical entities (and ICD-10), the Bedrock draft summary.
            "COMPREHEND_MEDICAL_REGION": config.comprehend_medical_region,
            "ICD10_INFERENCE": _flag(config.icd10_inference),
            "CLINICAL_SUMMARY": _flag(config.clinical_summary),
            "BEDROCK_REGION": config.bedrock_region,
            "BEDROCK_MODEL_ID": config.bedrock_model_id,
            **environment,
        }
        self.functions: dict[str, lambda_.Function] = {}

    def make(
        self,
        name: str,
        handler: str,
        *,
        description: str,
        memory: int = 512,
        timeout: Duration | None = None,
        reserved_concurrency: int | None = None,
        aws_actions: tuple[str, ...] = (),
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> lambda_.Function:
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{name}: only what this function needs",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            ],
        )
        # Actions this configuration never calls (Bedrock with clinicalSummary off, ...) are not granted.
        grants = grants_for(aws_actions, self._recordings, who=name, off=switched_off(self._config))
        for grant in grants:
            role.add_to_policy(grant.statement)
        if dead_letter_queue is not None and dead_letter_queue.encryption_master_key is not None:
            # Lambda sends failed async events to the KMS-encrypted queue with this role.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[dead_letter_queue.encryption_master_key.key_arn],
                )
            )
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=retention_days(self._config),
            encryption_key=self._key,
            removal_policy=RemovalPolicy.RETAIN if self._config.is_prod else RemovalPolicy.DESTROY,
        )
        function = lambda_.Function(
            self,
            name,
            function_name=f"videocall-{self._config.stage}-{name.replace('_', '-')}",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self._code,
            handler=handler,
            memory_size=memory,
            timeout=timeout or Duration.seconds(15),
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={**self._environment, **self._push_environment(aws_actions)},
            environment_encryption=self._key,
            vpc=self._vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self._sg],
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_queue=dead_letter_queue,
        )
        self.functions[name] = function
        self._suppress(name, role, function, grants=grants, asynchronous=bool(dead_letter_queue))
        return function

    def _push_environment(self, aws_actions: tuple[str, ...]) -> dict[str, str]:
        """Where the push credential is, told only to the functions that may read it (they send pushes)."""
        push = self._recordings.push
        if push is None or "secretsmanager:GetSecretValue" not in aws_actions:
            return {}
        return {"PUSH_CREDENTIALS_SECRET_ARN": push.secret.secret_arn}

    @staticmethod
    def _suppress(
        name: str, role: iam.Role, function: lambda_.Function, *, grants: list[Grant], asynchronous: bool
    ) -> None:
        # One IAM5 suppression per wildcard resource the role holds, naming exactly that resource.
        wildcards: dict[str, list[str]] = {"Resource::*": [f"{TRACING}: no resource scoping exists"]}
        for grant in grants:
            for resource in grant.nag_wildcards:
                wildcards.setdefault(resource, []).append(grant.wildcard_reason)
        role_findings = [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason=f"{name}: AWSLambdaVPCAccessExecutionRole manages the function's ENIs in the VPC "
                "(ec2:CreateNetworkInterface and friends support no resource scoping) and writes its logs",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
                ],
            ),
            *(
                NagPackSuppression(id="AwsSolutions-IAM5", reason=f"{name}: {'; '.join(why)}", applies_to=[resource])
                for resource, why in wildcards.items()
            ),
            NagPackSuppression(
                id="HIPAA.Security-IAMNoInlinePolicy",
                reason=f"{name}: the inline policy is this function's own grants, scoped to its own resources "
                "(its route's AWS actions, its database user, its dead-letter queue); a shared managed policy "
                "would widen them",
            ),
        ]
        NagSuppressions.add_resource_suppressions(role, role_findings, apply_to_children=True)
        function_findings = [
            NagPackSuppression(
                id="AwsSolutions-L1",
                reason=f"{name}: Python 3.13 is the runtime the code is tested and bundled for (cp313 aarch64 "
                "wheels); cdk-nag wants 3.14, to move to once every binary dependency ships cp314 wheels",
            )
        ]
        if not asynchronous:
            function_findings.append(
                NagPackSuppression(
                    id="HIPAA.Security-LambdaDLQ",
                    reason=f"{name}: invoked synchronously (API Gateway or the deploy trigger); the caller gets "
                    "the failure, and an alarm watches the function's errors: a dead-letter queue never "
                    "receives anything for synchronous invocations",
                )
            )
        NagSuppressions.add_resource_suppressions(function, function_findings)


_RETENTION_DAYS = {
    "ONE_DAY": 1,
    "THREE_DAYS": 3,
    "FIVE_DAYS": 5,
    "ONE_WEEK": 7,
    "TWO_WEEKS": 14,
    "ONE_MONTH": 30,
    "TWO_MONTHS": 60,
    "THREE_MONTHS": 90,
    "FOUR_MONTHS": 120,
    "FIVE_MONTHS": 150,
    "SIX_MONTHS": 180,
    "ONE_YEAR": 365,
    "THIRTEEN_MONTHS": 400,
    "EIGHTEEN_MONTHS": 545,
    "TWO_YEARS": 731,
    "THREE_YEARS": 1096,
    "FIVE_YEARS": 1827,
    "SIX_YEARS": 2192,
    "SEVEN_YEARS": 2557,
    "EIGHT_YEARS": 2922,
    "NINE_YEARS": 3288,
    "TEN_YEARS": 3653,
}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def retention_days(config: StageConfig) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least the configured number of days."""
    for name, days in sorted(_RETENTION_DAYS.items(), key=lambda item: item[1]):
        if days >= config.log_retention_days:
            return getattr(logs.RetentionDays, name)
    return logs.RetentionDays.TEN_YEARS
