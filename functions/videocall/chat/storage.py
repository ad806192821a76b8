"""The attachments bucket: the only place the chat context talks to S3.

- Uploads: a presigned POST (never a PUT: only a POST policy can cap the size and pin the type). Its
  policy pins the key, `Content-Type` to the declared (allowlisted) type, `content-length-range` to
  1..the declared size (itself at most the cap), and the SSE-KMS fields (the bucket's own key). S3
  refuses any form field the policy does not name, so an uploader cannot set object tags (the
  GuardDuty verdict) or another key. Signing is local: no AWS call.
- Downloads: a presigned GET that expires, served as an attachment with a safe file name, handed out
  only after the object's tags say GuardDuty found no threat (`GetObjectTagging`, one AWS call).
- Erasure and retention: every object version under a folder (the bucket is versioned).

The object key carries ids only (`attachments/<appointmentId>/<attachmentId>/file`); file names are
patient data and reach S3 only as the download's Content-Disposition. Keys, links and names are
never logged; a failure is logged by its error code only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from videocall.core.errors import StorageUnavailable
from videocall.core.storage import ObjectStore

PREFIX = "attachments/"
SCAN_TAG = "GuardDutyMalwareScanStatus"
NO_THREATS = "NO_THREATS_FOUND"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def object_folder(appointment_id: str, attachment_id: str) -> str:
    return f"{PREFIX}{appointment_id}/{attachment_id}/"


def object_key(appointment_id: str, attachment_id: str) -> str:
    return object_folder(appointment_id, attachment_id) + "file"


def appointment_folder(appointment_id: str) -> str:
    return f"{PREFIX}{appointment_id}/"


EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf", "image/heic": "heic",
              "text/plain": "txt"}  # fmt: skip


def safe_file_name(name: str, content_type: str | None = None, *, limit: int = 100) -> str:
    """A Content-Disposition-safe ASCII file name: accents folded, anything but letters, digits, '.', '_'
    and '-' made '_', no leading dots, the extension kept when shortened; 'attachment' when nothing is left.
    With a known `content_type`, the extension is the type's (the stored bytes are that type)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._") or "attachment"
    extension = EXTENSIONS.get((content_type or "").lower())
    if extension:
        stem, dot, current = cleaned.rpartition(".")
        if not (dot and current.lower() in (extension, "jpeg" if extension == "jpg" else extension)):
            cleaned = f"{cleaned}.{extension}"
    if len(cleaned) > limit:
        stem, dot, ext = cleaned.rpartition(".")
        ext = ext[:10] if dot else ""
        cleaned = (stem if dot else cleaned)[: limit - len(ext) - 1].rstrip("._") + (f".{ext}" if ext else "")
    return cleaned


@dataclass(frozen=True)
class Scanned:
    verdict: str | None  # GuardDuty's tag value; None: not scanned yet
    version_id: str | None  # the object version the verdict belongs to


@dataclass(frozen=True)
class Upload:
    url: str
    fields: dict[str, str]


class AttachmentStore:
    def __init__(self, client: Any, bucket: str, *, kms_key_arn: str, upload_seconds: int, link_seconds: int) -> None:
        self._client = client
        self.bucket = bucket
        self._kms_key_arn = kms_key_arn
        self._upload_seconds = upload_seconds
        self.link_seconds = link_seconds
        self._objects = ObjectStore(client, bucket, link_seconds=link_seconds)
        self._aws_calls = 0  # calls that reach S3 (presigning is local and not counted)

    @property
    def calls(self) -> int:
        return self._aws_calls + self._objects.calls

    def presigned_post(self, key: str, *, content_type: str, size: int) -> Upload:
        fields: dict[str, str] = {"Content-Type": content_type}
        conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, size]]
        if self._kms_key_arn:
            sse = {"x-amz-server-side-encryption": "aws:kms",
                   "x-amz-server-side-encryption-aws-kms-key-id": self._kms_key_arn}  # fmt: skip
            fields.update(sse)
            conditions += [{k: v} for k, v in sse.items()]
        try:
            post = self._client.generate_presigned_post(
                self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=self._upload_seconds
            )
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStore._unavailable("presign_post", exc) from None
        return Upload(url=post["url"], fields={k: str(v) for k, v in post["fields"].items()})

    @property
    def upload_seconds(self) -> int:
        return self._upload_seconds

    def scan_status(self, key: str) -> Scanned:
        """The GuardDuty verdict tag of the object's current version (None when it has none yet), and that
        version: a link is signed for exactly the version whose verdict was read, so bytes posted again
        under the same key later (the upload form lives a few minutes) are never what it serves. Raises
        LookupError when the object does not exist (not uploaded)."""
        self._aws_calls += 1
        try:
            response = self._client.get_object_tagging(Bucket=self.bucket, Key=key)
            tags = response.get("TagSet", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _MISSING:
                raise LookupError("not uploaded") from None
            raise ObjectStore._unavailable("get_object_tagging", exc) from None
        except BotoCoreError as exc:
            raise ObjectStore._unavailable("get_object_tagging", exc) from None
        verdict = next((str(t.get("Value")) for t in tags if t.get("Key") == SCAN_TAG), None)
        return Scanned(verdict, response.get("VersionId"))

    def download_link(self, key: str, file_name: str, *, version_id: str | None, content_type: str) -> str:
        """A presigned GET that expires, of one version, served as an attachment under a safe name whose
        extension is the type's (never inline; never `report.pdf.html`)."""
        params = {
            "Bucket": self.bucket, "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{safe_file_name(file_name, content_type)}"',
        }  # fmt: skip
        if version_id and version_id != "null":
            params["VersionId"] = version_id
        try:
            url: str = self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.link_seconds)
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStore._unavailable("presign", exc) from None
        return url

    def delete_all_versions(self, folder: str) -> int:
        if not folder.startswith(PREFIX):
            raise ValueError("refusing to delete outside the attachments prefix")
        return self._objects.delete_all_versions(folder)


__all__ = ["AttachmentStore", "StorageUnavailable", "Upload", "object_key", "safe_file_name"]
