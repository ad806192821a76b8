"""Object storage (S3): list what landed under a prefix, hand out download links that expire, and
delete every version of what lies under a prefix (versioned buckets: deleting the current version
only leaves the content recoverable, which erasure and retention must not).

Keys and links are never logged; a failure is logged by its error code only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from videocall.core.errors import StorageUnavailable
from videocall.core.observability import count_failure, logger


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


class ObjectStore:
    def __init__(self, client: Any, bucket: str, *, link_seconds: int = 900) -> None:
        self._client = client
        self.bucket = bucket
        self._link_seconds = link_seconds
        self.calls = 0

    def list(self, prefix: str) -> list[StoredObject]:
        found: list[StoredObject] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            page = self._call("list_objects_v2", **params)
            found += [StoredObject(o["Key"], int(o["Size"]), o["LastModified"]) for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    def read(self, key: str, *, max_bytes: int = 50 * 1024 * 1024) -> bytes:
        """An object's bytes (a transcript file); refuses what is larger than `max_bytes`."""
        response = self._call("get_object", Bucket=self.bucket, Key=key)
        if int(response.get("ContentLength") or 0) > max_bytes:
            raise StorageUnavailable("The object is too large to process.")
        try:
            data: bytes = response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("get_object", exc) from None
        return data

    def download_link(self, key: str, file_name: str) -> str:
        """A presigned GET that expires, served as an attachment (never rendered inline)."""
        safe_name = "".join(c for c in file_name if c.isalnum() or c in "._-") or "download"
        try:
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{safe_name}"',
                },
                ExpiresIn=self._link_seconds,
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("presign", exc) from None
        return url

    @property
    def link_seconds(self) -> int:
        return self._link_seconds

    def delete_all_versions(self, prefix: str) -> int:
        """Delete every object version and delete marker under `prefix`; the number of versions deleted."""
        if not prefix or not prefix.endswith("/"):
            raise ValueError("refusing to delete a prefix that is not a folder")
        deleted = 0
        key_marker: str | None = None
        version_marker: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if key_marker:
                params["KeyMarker"] = key_marker
                if version_marker:
                    params["VersionIdMarker"] = version_marker
            page = self._call("list_object_versions", **params)
            batch = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(batch), 1000):
                chunk = batch[start : start + 1000]
                result = self._call("delete_objects", Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
                if result.get("Errors"):
                    codes = sorted({e.get("Code", "") for e in result["Errors"]})
                    logger.warning("some object versions were not deleted", extra={"error_codes": codes})
                    raise StorageUnavailable()
                deleted += len(chunk)
            if not page.get("IsTruncated"):
                return deleted
            key_marker, version_marker = page.get("NextKeyMarker"), page.get("NextVersionIdMarker")

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**params)
            return result
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(operation, exc) from None

    @staticmethod
    def _unavailable(operation: str, exc: Exception) -> StorageUnavailable:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("object storage call failed", extra={"operation": operation, "error_code": code})
        count_failure("storage")
        return StorageUnavailable()
