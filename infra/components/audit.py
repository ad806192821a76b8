"""Who touched a recording: CloudTrail S3 data events (reads, writes, deletes, every object) on the
recordings bucket, in a trail of their own.

The trail writes to its own bucket: SSE-KMS under the data key, public access blocked, TLS only,
versioned, server access logs to the recordings' access-log bucket, expiry after the configured log
retention; log file validation on (digest files prove the logs were not altered). It also delivers
to a KMS-encrypted CloudWatch Logs group, for searching and for metric filters.

Management events are left out: this trail is about object access, and the account's own trail (if
any) already records management events; a second copy of them would be billed.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.buckets import encrypted_bucket

CLOUDTRAIL = "cloudtrail.amazonaws.com"


class RecordingsAccessTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        recordings: s3.IBucket,
        access_logs: s3.IBucket,
        key: kms.Key,
        prod: bool,
        log_retention_days: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY
        trail_name = f"{Stack.of(self).stack_name}-recordings-access"
        # Built from the name, not the trail's token: the key policy must not depend on the trail,
        # which depends on the key.
        trail_arn = f"arn:{Aws.PARTITION}:cloudtrail:{Aws.REGION}:{Aws.ACCOUNT_ID}:trail/{trail_name}"
        self.bucket = encrypted_bucket(
            self, "Bucket", key=key, access_logs=access_logs, logs_prefix="recordings-trail/",
            lifecycle=s3.LifecycleRule(id="retention", expiration=Duration.days(log_retention_days),
                                       noncurrent_version_expiration=Duration.days(30)),
            removal=removal,
        )  # fmt: skip
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=key, removal_policy=removal
        )
        # CloudTrail encrypts the log files with the key, for this trail only.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptRecordingsTrail",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{Aws.PARTITION}:cloudtrail:*:{Aws.ACCOUNT_ID}:trail/*"
                        )
                    },
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribeKey",
                principals=[iam.ServicePrincipal(CLOUDTRAIL)],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=trail_name,
            bucket=self.bucket,
            encryption_key=key,
            enable_file_validation=True,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.NONE,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.log_group,
        )
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=recordings)],
            read_write_type=cloudtrail.ReadWriteType.ALL,
            include_management_events=False,
        )
        # The trail's files must exist before it starts writing: the bucket policy first.
        assert self.bucket.policy is not None
        self.trail.node.add_dependency(self.bucket.policy)
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="HIPAA.Security-S3BucketReplicationEnabled",
                    reason="Recordings trail bucket: kept in one region by design (GDPR data residency, one KMS "
                    "key); durability from S3 and versioning, integrity from CloudTrail log file validation",
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.trail,
            [
                NagPackSuppression(
                    id="HIPAA.Security-IAMNoInlinePolicy",
                    reason="Recordings trail LogsRole: CloudTrail's generated policy writes only to the "
                    "trail's own log group (CreateLogStream, PutLogEvents)",
                )
            ],
            apply_to_children=True,
        )
