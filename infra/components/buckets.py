"""The one shape of a bucket that holds patient data or its audit trail: SSE-KMS with a customer key
(bucket keys on), public access blocked, TLS only, versioned, owner-enforced, server access logs, and a
lifecycle rule. Recordings, attachments and the recordings' CloudTrail all use it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Days the lifecycle rule waits after the configured retention: the app's retention job runs daily
# and respects legal holds; the rule only catches what the job could not delete.
LIFECYCLE_BACKSTOP_DAYS = 7


def retention_backstop(retention_days: int) -> s3.LifecycleRule:
    """Content past retention + the backstop goes, and a replaced or deleted version a day later."""
    return s3.LifecycleRule(
        id="retention-backstop",
        expiration=Duration.days(retention_days + LIFECYCLE_BACKSTOP_DAYS),
        noncurrent_version_expiration=Duration.days(1),
        abort_incomplete_multipart_upload_after=Duration.days(1),
    )


def encrypted_bucket(
    scope: Construct, id: str, *, key: kms.IKey, access_logs: s3.IBucket, logs_prefix: str,
    lifecycle: s3.LifecycleRule, removal: RemovalPolicy,
) -> s3.Bucket:  # fmt: skip
    return s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=logs_prefix,
        lifecycle_rules=[lifecycle],
        removal_policy=removal,
    )
