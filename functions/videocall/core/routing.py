"""What a route is: the records each context's route table is made of (see videocall.routes).

`aws_actions` lists the AWS actions a route's code calls (beyond the database); the CDK app turns
them into the function's IAM policy with each action's resource type (infra/components/iam.py), and
tests tie every call the code makes to this list.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from videocall.core.errors import DomainError


@dataclass(frozen=True)
class Answer:
    """A success answer of a route besides its `status_code` one (create's 200 for a live meeting);
    `model` None: the route's response_model."""

    status: int
    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Route:
    name: str  # function and operation id: create_meeting
    method: str
    path: str  # API Gateway / OpenAPI syntax: /meetings/{meetingId}
    module: str  # handler module holding `endpoint` and `handler`
    summary: str
    response_model: type[BaseModel]
    status_code: int = 200
    aws_actions: tuple[str, ...] = ()
    # The errors this route raises beyond the ones every route can (videocall.openapi.COMMON_ERRORS,
    # and those its aws_actions imply): the OpenAPI document declares exactly these statuses.
    errors: tuple[type[DomainError], ...] = ()
    also: tuple[Answer, ...] = ()  # other success answers

    @property
    def powertools_rule(self) -> str:
        return self.path.replace("{", "<").replace("}", ">")

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class EventRoute:
    """An EventBridge rule on Chime's events and the function that handles them."""

    name: str
    detail_type: str
    module: str
    description: str
    aws_actions: tuple[str, ...] = ()

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class ScheduledJob:
    """A function run on a schedule (EventBridge Scheduler / a schedule rule)."""

    name: str
    schedule: str  # "rate(1 minute)", "cron(30 2 * * ? *)"
    module: str
    description: str
    aws_actions: tuple[str, ...] = ()
    timeout_seconds: int = 300

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


# Action groups shared by several routes.
START_RECORDING = (
    "chime:CreateMediaCapturePipeline", "chime:CreateMediaConcatenationPipeline",
    "chime:DeleteMediaCapturePipeline", "iam:PassRole", "s3:GetBucketPolicy",
)  # fmt: skip
STOP_RECORDING = ("chime:DeleteMediaCapturePipeline",)
READ_RECORDINGS = ("s3:GetObject", "kms:Decrypt")
LIST_RECORDINGS = ("s3:ListBucket",)
DELETE_RECORDINGS = ("s3:ListBucket", "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion")
# Medical entities, ICD-10 candidates (Comprehend Medical) and the draft summary (Bedrock Converse).
CLINICAL_RECORD = ("comprehendmedical:DetectEntitiesV2", "comprehendmedical:InferICD10CM", "bedrock:InvokeModel")
# Push notifications (FCM): the sender's service-account credential, loaded only by functions that send.
NOTIFY = ("secretsmanager:GetSecretValue",)
# The chat's attachments bucket and its key: `@attachments` names them (infra/components/iam.py grants the
# action there, never on the recordings bucket). Presigned POSTs and GETs carry the function's credentials.
UPLOAD_ATTACHMENTS = ("s3:PutObject@attachments", "kms:GenerateDataKey@attachments")
# A download link names the object version whose scan verdict was read (s3:GetObjectVersion).
READ_ATTACHMENTS = ("s3:GetObject@attachments", "s3:GetObjectVersion@attachments", "kms:Decrypt@attachments",
                    "s3:GetObjectTagging@attachments")  # fmt: skip
DELETE_ATTACHMENTS = (
    "s3:ListBucketVersions@attachments", "s3:DeleteObject@attachments", "s3:DeleteObjectVersion@attachments",
)  # fmt: skip
