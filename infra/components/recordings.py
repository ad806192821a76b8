"""Where Chime media pipelines write recordings and transcripts.

SSE-KMS under the customer-managed recordings key (rotated), public access blocked, TLS enforced,
versioned, server access logs to a log bucket. Only `mediapipelines.chime.amazonaws.com`, acting for
THIS account's Chime resources (aws:SourceAccount, aws:SourceArn), may write, and may use the key;
nothing else is public.

The pipeline sink role: the functions pass it to every capture pipeline (SinkIamRoleArn, with
SseAwsKeyManagementParams naming the recordings key), the pipeline assumes it to write each object
under the key, and concatenation reuses it to read the capture back. Only the media-pipelines
service, for this account's Chime resources, may assume it; the bucket policy and the key policy name
it as well, as the developer guide's "object level server-side encryption" setup asks.

Retention: the app's own job (apply_retention) deletes content past `recordingRetentionDays`,
every version, except under a legal hold. The lifecycle rule is only the backstop: it expires
current versions 7 days after that and noncurrent versions a day after they become noncurrent.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.buckets import encrypted_bucket, retention_backstop
from infra.components.iam import MEDIA_PIPELINES, RECORDINGS_PREFIX, logical_id


class RecordingsBucket(Construct):
    def __init__(self, scope: Construct, id: str, *, key: kms.Key, retention_days: int, prod: bool) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY
        # S3 server access logs can only be delivered to a bucket with SSE-S3 (not SSE-KMS).
        self.log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(max(retention_days, 365)), noncurrent_version_expiration=Duration.days(30)
                )
            ],
            removal_policy=removal,
            auto_delete_objects=False,
        )
        self.bucket = encrypted_bucket(
            self, "Bucket", key=key, access_logs=self.log_bucket, logs_prefix="recordings/",
            lifecycle=retention_backstop(retention_days), removal=removal,
        )  # fmt: skip
        conditions = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:chime:*:{Aws.ACCOUNT_ID}:*"},
        }
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ChimeMediaPipelinesWrite",
                principals=[iam.ServicePrincipal(MEDIA_PIPELINES)],
                # Put to write captures; Get and List for the concatenation pipeline reading them back
                # (the developer guide's concatenation bucket policy).
                actions=["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
                conditions=conditions,
            )
        )
        self.sink_role = iam.Role(
            self,
            "PipelineSinkRole",
            assumed_by=iam.ServicePrincipal(MEDIA_PIPELINES).with_conditions(conditions),
            description="Assumed by Chime media pipelines to write and read recordings under the recordings key",
        )
        objects = self.bucket.arn_for_objects(f"{RECORDINGS_PREFIX}*")
        self.sink_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject"],
                resources=[objects],
            )
        )
        # No s3:prefix condition here: how the service lists a capture's chunks is not documented.
        self.sink_role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))
        # GenerateDataKey to write under the key; Decrypt for concatenation reading the capture back.
        self.sink_role.add_to_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn])
        )
        sink = iam.ArnPrincipal(self.sink_role.role_arn)
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PipelineSinkRoleObjects",
                principals=[sink],
                actions=["s3:PutObject", "s3:PutObjectAcl", "s3:GetObject"],
                resources=[objects],
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PipelineSinkRoleList",
                principals=[sink],
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ChimeMediaPipelinesEncrypt",
                principals=[iam.ServicePrincipal(MEDIA_PIPELINES)],
                # GenerateDataKey to write; Decrypt for concatenation pipelines reading captures back.
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions=conditions,
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PipelineSinkRoleEncrypt",
                principals=[sink],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        NagSuppressions.add_resource_suppressions(
            self.sink_role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="PipelineSinkRole: the pipelines write objects whose keys (appointment/meeting/"
                    "recording/chunk) are made at run time; the pattern is the recordings/ prefix of the "
                    "recordings bucket only",
                    applies_to=[f"Resource::<{logical_id(self.bucket)}.Arn>/{RECORDINGS_PREFIX}*"],
                ),
                NagPackSuppression(
                    id="HIPAA.Security-IAMNoInlinePolicy",
                    reason="PipelineSinkRole: the inline policy is this role's own grants on the recordings "
                    "bucket and key only; a shared managed policy would widen them",
                ),
            ],
            apply_to_children=True,
        )
        replication = (
            "kept in one region by design (GDPR data residency, one KMS key); durability comes from S3 and "
            "versioning, retention from the lifecycle rule"
        )
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="HIPAA.Security-S3BucketReplicationEnabled", reason=f"Recordings bucket: {replication}"
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.log_bucket,
            [
                NagPackSuppression(
                    id="HIPAA.Security-S3BucketReplicationEnabled",
                    reason=f"Recordings access-log bucket: {replication}",
                ),
                NagPackSuppression(
                    id="HIPAA.Security-S3DefaultEncryptionKMS",
                    reason="Recordings access-log bucket: S3 server access logs can only be "
                    "delivered to SSE-S3 buckets, not SSE-KMS",
                ),
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="Recordings access-log bucket: it is the access-log destination; "
                    "logging it into itself would loop",
                ),
            ],
        )
