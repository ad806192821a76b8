"""Where Chime media pipelines write recordings and transcripts.

SSE-KMS under the customer-managed recordings key (rotated), public access blocked, TLS enforced,
versioned, server access logs to a log bucket, expiry after the configured retention. Only
`mediapipelines.chime.amazonaws.com`, acting for THIS account's Chime resources (aws:SourceAccount,
aws:SourceArn), may write, and may use the key; nothing else is public.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

MEDIA_PIPELINES = "mediapipelines.chime.amazonaws.com"


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
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="recordings/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="retention",
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
        )
        conditions = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:chime:*:{Aws.ACCOUNT_ID}:*"},
        }
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ChimeMediaPipelinesWrite",
                principals=[iam.ServicePrincipal(MEDIA_PIPELINES)],
                actions=["s3:PutObject", "s3:PutObjectAcl"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions=conditions,
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
