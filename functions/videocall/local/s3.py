"""Local S3 and KMS for `videocall serve` and tests: moto's server, in this process, on a local port.

Clients sign with SigV4 and use path-style addressing, so a presigned URL is
`http://127.0.0.1:<port>/<bucket>/<key>?X-Amz-...` and any HTTP client (curl, a browser) can fetch it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

RECORDINGS_KEY_ALIAS = "alias/videocall-local-recordings"
ATTACHMENTS_KEY_ALIAS = "alias/videocall-local-attachments"
_DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def start_local_s3(host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """Start moto's server in a thread (port 0: a free one). Returns it and its endpoint URL; stop() it when done.

    Needs moto's server extra (flask, flask-cors) besides moto[s3,kms]."""
    from moto.server import ThreadedMotoServer

    requests_log = logging.getLogger("werkzeug")  # one line per request otherwise
    if requests_log.level == logging.NOTSET:
        requests_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def _credentials(endpoint_url: str | None) -> dict[str, str]:
    """A local endpoint accepts any credentials: dummy ones when the environment has none (it is not changed)."""
    if endpoint_url is None:
        return {}
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {}
    return dict(_DUMMY_CREDENTIALS)


def s3_client(endpoint_url: str | None, region: str = "eu-central-1") -> Any:
    """An S3 client (SigV4, path-style); `endpoint_url` None means the real S3."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return boto3.client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=config, **_credentials(endpoint_url)
    )


def kms_client(endpoint_url: str | None, region: str = "eu-central-1") -> Any:
    """A KMS client for the same endpoint as `s3_client` (moto's server answers both)."""
    return boto3.client("kms", region_name=region, endpoint_url=endpoint_url, **_credentials(endpoint_url))


def _recordings_key(kms: Any, alias: str = RECORDINGS_KEY_ALIAS) -> str:
    try:
        return str(kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFoundException":
            raise
    key = kms.create_key(Description=f"videocall local {alias.rsplit('-', 1)[-1]}", KeyUsage="ENCRYPT_DECRYPT")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])
    return str(key["KeyMetadata"]["Arn"])


def ensure_attachments_bucket(s3: Any, kms: Any, bucket: str) -> str:
    """Idempotent: the chat's attachments bucket, like the recordings bucket (versioned, SSE-KMS) but under a
    key of its own. Returns the key ARN. Nothing scans here (no GuardDuty): ATTACHMENT_SCAN_REQUIRED is off
    locally, and a test tags an object GuardDutyMalwareScanStatus itself to play a verdict."""
    return ensure_recordings_bucket(s3, kms, bucket, key_alias=ATTACHMENTS_KEY_ALIAS)


def ensure_recordings_bucket(s3: Any, kms: Any, bucket: str, *, key_alias: str = RECORDINGS_KEY_ALIAS) -> str:
    """Idempotent: the bucket (versioned, default SSE-KMS with the local recordings key). Returns the key ARN."""
    region = s3.meta.region_name or "eu-central-1"
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        create: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**create)
        except ClientError as race:
            if race.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key_arn = _recordings_key(kms, key_alias)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    return key_arn
