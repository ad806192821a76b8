"""The stack only composes the constructs; each concern lives in its own (infra/components)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra.bundling import function_code
from infra.components.api import MeetingApi
from infra.components.attachments import AttachmentsBucket
from infra.components.audit import RecordingsAccessTrail
from infra.components.database import Database
from infra.components.events import ChimeEvents, ScheduledJobs
from infra.components.functions import FunctionFactory, retention_days
from infra.components.iam import BedrockModel, RecordingsResources
from infra.components.keys import EncryptionKeys
from infra.components.migrations import MigrationsOnDeploy
from infra.components.monitoring import Monitoring
from infra.components.network import Network
from infra.components.push import PushCredentials
from infra.components.recordings import RecordingsBucket
from infra.config import StageConfig


class VideoCallStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig, **kwargs: object) -> None:
        super().__init__(scope, id, **kwargs)  # type: ignore[arg-type]
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        for key, value in (("service", "videocall"), ("stage", config.stage), ("data-classification", "phi")):
            Tags.of(self).add(key, value, exclude_resource_types=untaggable)
        log_retention = retention_days(config)

        keys = EncryptionKeys(self, "Keys", prod=config.is_prod)
        network = Network(self, "Network", key=keys.data, prod=config.is_prod, log_retention=log_retention)
        database = Database(
            self,
            "Database",
            mode=config.database_mode,
            vpc=network.vpc,
            function_sg=network.function_sg,
            key=keys.data,
            prod=config.is_prod,
            external_secret_arn=config.external_database_secret_arn,
            log_retention=log_retention,
        )
        recordings = RecordingsBucket(
            self,
            "Recordings",
            key=keys.recordings,
            retention_days=config.recording_retention_days,
            prod=config.is_prod,
        )
        RecordingsAccessTrail(
            self,
            "RecordingsTrail",
            recordings=recordings.bucket,
            access_logs=recordings.log_bucket,
            key=keys.data,
            prod=config.is_prod,
            log_retention_days=config.log_retention_days,
            log_retention=log_retention,
        )
        attachments = AttachmentsBucket(
            self,
            "Attachments",
            retention_days=config.chat_retention_days,
            access_logs=recordings.log_bucket,
            prod=config.is_prod,
        )
        push = PushCredentials(
            self, "PushCredentials", key=keys.data, prod=config.is_prod, imported_arn=config.push_credentials_secret_arn
        )
        factory = FunctionFactory(
            self,
            "Functions",
            config=config,
            code=function_code(),
            vpc=network.vpc,
            security_group=network.function_sg,
            key=keys.data,
            recordings=RecordingsResources(
                bucket=recordings.bucket,
                key=keys.recordings,
                sink_role=recordings.sink_role,
                bedrock=BedrockModel(config.bedrock_region, config.bedrock_model_id)
                if config.clinical_summary
                else None,
                attachments=attachments.resources,
                push=push.resources,
            ),
            environment={**database.environment, **attachments.environment},
        )
        api = MeetingApi(self, "Api", config=config, factory=factory, key=keys.data, log_retention=log_retention)
        chime_events = ChimeEvents(self, "ChimeEvents", factory=factory, key=keys.data)
        jobs = ScheduledJobs(self, "Jobs", factory=factory, key=keys.data)
        # Every function the app runs is updated only after the migrations ran: new code never meets the old schema.
        app_functions = list(factory.functions.values())
        MigrationsOnDeploy(self, "Migrations", factory=factory, after=[database], before=app_functions)
        for function in factory.functions.values():
            database.grant_connect(function)
        monitoring = Monitoring(
            self,
            "Monitoring",
            stage=config.stage,
            key=keys.data,
            alarm_emails=config.alarm_emails,
            api=api.api,
            functions=factory.functions,
            dead_letter_queues={**chime_events.dead_letter_queues, **jobs.dead_letter_queues},
            scheduled_jobs=tuple(jobs.functions),
            cluster=database.cluster,
            proxy=database.proxy,
            comprehend_medical_region=config.comprehend_medical_region,
        )

        CfnOutput(self, "ApiUrl", value=api.api.url, description="Base URL for the app")
        CfnOutput(
            self,
            "LegacyEndpoint",
            value=f"{api.api.url}chime-meeting-token",
            description="The app's original single endpoint",
        )
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards:name={monitoring.dashboard.dashboard_name}",
        )
        CfnOutput(self, "RecordingsBucketName", value=recordings.bucket.bucket_name)
        CfnOutput(self, "AttachmentsBucketName", value=attachments.bucket.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn)
        CfnOutput(
            self,
            "PushCredentialsSecretArn",
            value=push.secret.secret_arn,
            description="Put the Firebase service-account JSON here (push notifications)",
        )
