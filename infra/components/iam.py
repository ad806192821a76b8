"""Least-privilege IAM from the route table: each AWS action a route, event route or job lists
(`aws_actions`, see videocall.routes) is looked up here for the resource type the Service
Authorization Reference (SAR) gives it, and the function gets one statement per kind of resource.

An action that is not in the table fails synth (UnknownAwsAction): a new action never silently
gets `Resource: "*"`; add it here with its resource type from the SAR first.

What the SAR says, per action (checked against the SAR's "Actions, resources, and condition keys"
pages for Amazon Chime, Amazon S3, AWS KMS, IAM and Amazon Comprehend Medical; see the comments for
what is not from the SAR):

| action | SAR resource type | granted on |
|---|---|---|
| chime:CreateMeeting | none (tag keys only) | `*` |
| chime:Create/Get/Delete/BatchCreateAttendee, DeleteMeeting, GetMeeting | meeting* | `meeting/*` (1) |
| chime:UpdateAttendeeCapabilities, BatchUpdateAttendeeCapabilitiesExcept | meeting* | `meeting/*` (1) |
| chime:StartMeetingTranscription, StopMeetingTranscription | meeting* (4) | `meeting/*` (1) |
| chime:CreateMediaCapturePipeline, CreateMediaConcatenationPipeline | none (2) | `*` |
| chime:DeleteMediaCapturePipeline, GetMediaPipeline | media-pipeline* | `media-pipeline/*` (1) |
| iam:PassRole | role* (3) | the pipeline sink role only, both conditions |
| s3:GetBucketPolicy | bucket | `*` (the media-pipelines guide: "on all resources") |
| s3:ListBucket, s3:ListBucketVersions | bucket (key s3:prefix) | the recordings bucket, `recordings/*` |
| s3:GetObject, s3:DeleteObject, s3:DeleteObjectVersion | object | `<recordings bucket>/recordings/*` |
| kms:Decrypt | key* (key kms:ViaService) | the recordings key, through S3 only |
| comprehendmedical:DetectEntitiesV2, InferICD10CM | none | `*` |
| bedrock:InvokeModel (the Converse API) | foundation-model, inference-profile, ... | the configured model only (5) |
| s3:Put/GetObject, GetObjectTagging/Version, DeleteObject(Version) `@attachments` | object | `attachments/*` (6) |
| s3:ListBucketVersions `@attachments` | bucket (key s3:prefix) | the attachments bucket, `attachments/*` |
| kms:GenerateDataKey, kms:Decrypt `@attachments` | key* (key kms:ViaService) | the attachments key, through S3 only |
| secretsmanager:GetSecretValue | secret* | the push credentials secret only (7) |

(1) this account's and region's. (2) tag condition keys; dependent action s3:GetBucketPolicy.
(3) condition keys iam:PassedToService, iam:AssociatedResourceArn. The AssociatedResourceArn value
(a media-pipeline ARN) is from the media-pipelines developer guide, not the SAR.
(4) meeting* as the SAR's Chime page gave it when the transcription routes were added (not re-read
since): were it to list no resource type, every start/stop would be AccessDenied on `meeting/*`, and
the fix is On.ANY here. The transcription itself runs as Chime's service-linked role
AWSServiceRoleForAmazonChimeTranscription (transcribe:StartStreamTranscription and
StartMedicalStreamTranscription), created once per account (`aws iam create-service-linked-role
--aws-service-name transcription.chime.amazonaws.com`): the caller needs no Transcribe permission.
(5) Converse is authorized by bedrock:InvokeModel (Bedrock API reference). A foundation model id
(`anthropic.claude-...`) is granted as `arn:<partition>:bedrock:<bedrockRegion>::foundation-model/<id>`
and nothing else. An EU cross-region inference profile id (`eu.anthropic.claude-...`, see
config.inference_profile_geography) needs, per the Bedrock user guide ("IAM policy requirements for
Geographic cross-Region inference"), the profile in the source region
(`arn:<partition>:bedrock:<bedrockRegion>:<account>:inference-profile/<id>`) and the foundation model
in the source and every destination region of the profile: `arn:<partition>:bedrock:eu-*::foundation-model/
<id without the eu. prefix>` (the EU profile's destinations are EU regions; config refuses any other
geography). With clinicalSummary off the code never calls Bedrock, and no role gets bedrock:InvokeModel
at all; with icd10Inference off, no role gets comprehendmedical:InferICD10CM (`switched_off`).

(6) An action written `<action>@attachments` in a route's aws_actions is the same IAM action granted on the
chat's attachments bucket and key instead of the recordings ones (one action, two kinds of resource: the
suffix says which). The presigned POST and GET links the chat hands out carry the function's credentials,
so its role needs s3:PutObject (+ kms:GenerateDataKey for SSE-KMS) and s3:GetObject (+ kms:Decrypt).

(7) The FCM service-account JSON (infra/components/push.py), read by the functions that send pushes. Its
companion, granted with it and never listed by a route: kms:Decrypt on the key the secret is encrypted
with (the stack's data key), only through Secrets Manager (kms:ViaService). The database secret's read
(external mode) is the database's wiring, not this table's.

CreateMediaCapturePipeline takes the meeting as its SourceArn, but the SAR lists no resource type
for it (neither meeting nor media-pipeline): scoping it to `meeting/*` or `media-pipeline/*` would
be AccessDenied, like CreateMeeting scoped to a meeting ARN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import cast

from aws_cdk import Aws, CfnElement, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from infra.config import StageConfig, inference_profile_geography

MEDIA_PIPELINES = "mediapipelines.chime.amazonaws.com"
# Every object the app and the pipelines write is under this prefix (videocall.recordings.service).
RECORDINGS_PREFIX = "recordings/"


class On(Enum):
    """The kinds of resource an action is granted on."""

    ANY = "*"
    MEETING = "meeting"
    MEDIA_PIPELINE = "media-pipeline"
    SINK_ROLE = "sink-role"
    RECORDINGS_BUCKET = "recordings-bucket"
    RECORDINGS_OBJECTS = "recordings-objects"
    RECORDINGS_KEY = "recordings-key"
    BEDROCK_MODEL = "bedrock-model"
    ATTACHMENTS_BUCKET = "attachments-bucket"
    ATTACHMENTS_OBJECTS = "attachments-objects"
    ATTACHMENTS_KEY = "attachments-key"
    PUSH_SECRET = "push-secret"  # noqa: S105 - a kind of resource, not a password
    PUSH_SECRET_KEY = "push-secret-key"  # noqa: S105 - never in RESOURCE_TYPES: granted with PUSH_SECRET


RESOURCE_TYPES: dict[str, On] = {
    # Chime SDK meetings. CreateMeeting has no resource type: "*" or every create is AccessDenied.
    "chime:CreateMeeting": On.ANY,
    "chime:CreateAttendee": On.MEETING,
    "chime:GetAttendee": On.MEETING,
    "chime:DeleteAttendee": On.MEETING,
    "chime:UpdateAttendeeCapabilities": On.MEETING,
    "chime:BatchUpdateAttendeeCapabilitiesExcept": On.MEETING,
    "chime:BatchCreateAttendee": On.MEETING,
    "chime:DeleteMeeting": On.MEETING,
    "chime:GetMeeting": On.MEETING,
    # Live transcription of a meeting (the SAR's resource type: meeting).
    "chime:StartMeetingTranscription": On.MEETING,
    "chime:StopMeetingTranscription": On.MEETING,
    # Chime SDK media pipelines. The two creates have no resource type in the SAR (the pipeline does
    # not exist yet, and the meeting is not listed as a resource of the action): "*".
    "chime:CreateMediaCapturePipeline": On.ANY,
    "chime:CreateMediaConcatenationPipeline": On.ANY,
    "chime:DeleteMediaCapturePipeline": On.MEDIA_PIPELINE,
    "chime:GetMediaPipeline": On.MEDIA_PIPELINE,
    # SinkIamRoleArn: the caller passes the sink role to the media-pipelines service.
    "iam:PassRole": On.SINK_ROLE,
    # The SAR gives it the bucket resource type, but the media-pipelines developer guide says the
    # caller needs it "on all resources" (the service checks the sink bucket's policy as the caller).
    "s3:GetBucketPolicy": On.ANY,
    "s3:ListBucket": On.RECORDINGS_BUCKET,
    "s3:ListBucketVersions": On.RECORDINGS_BUCKET,
    "s3:GetObject": On.RECORDINGS_OBJECTS,
    "s3:DeleteObject": On.RECORDINGS_OBJECTS,
    "s3:DeleteObjectVersion": On.RECORDINGS_OBJECTS,
    # GetObject on SSE-KMS objects (and the download links the function signs with its own role)
    # needs Decrypt on the key. Deleting SSE-KMS objects needs no KMS permission.
    "kms:Decrypt": On.RECORDINGS_KEY,
    # Comprehend Medical: no resource type in the SAR (it acts on the text sent, not on a resource): "*".
    "comprehendmedical:DetectEntitiesV2": On.ANY,
    "comprehendmedical:InferICD10CM": On.ANY,
    # Bedrock Converse: the one configured model (foundation model, or EU inference profile + its models).
    "bedrock:InvokeModel": On.BEDROCK_MODEL,
    # The chat's attachments bucket and key (`@attachments`, note 6): upload and download links, the scan
    # verdict tag, and deleting every version (erasure, retention).
    "s3:PutObject@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:GetObject@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:GetObjectTagging@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:GetObjectVersion@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:DeleteObject@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:DeleteObjectVersion@attachments": On.ATTACHMENTS_OBJECTS,
    "s3:ListBucketVersions@attachments": On.ATTACHMENTS_BUCKET,
    "kms:GenerateDataKey@attachments": On.ATTACHMENTS_KEY,
    "kms:Decrypt@attachments": On.ATTACHMENTS_KEY,
    # Push notifications: the FCM service-account credential (note 7).
    "secretsmanager:GetSecretValue": On.PUSH_SECRET,
}

# Kinds of resource whose grant needs another, on another resource, that no route lists (note 7).
COMPANIONS: dict[On, tuple[On, tuple[str, ...]]] = {On.PUSH_SECRET: (On.PUSH_SECRET_KEY, ("kms:Decrypt",))}

# Actions that do not work without others. From the SAR's "dependent actions" column
# (s3:GetBucketPolicy), and from how this app calls them (the sink role passed with SinkIamRoleArn,
# Decrypt for SSE-KMS objects).
REQUIRES: dict[str, tuple[str, ...]] = {
    "chime:CreateMediaCapturePipeline": ("s3:GetBucketPolicy", "iam:PassRole"),
    "chime:CreateMediaConcatenationPipeline": ("s3:GetBucketPolicy",),
    "s3:GetObject": ("kms:Decrypt",),
    "s3:GetObject@attachments": ("kms:Decrypt@attachments",),
    "s3:PutObject@attachments": ("kms:GenerateDataKey@attachments",),
}

# Why each wildcard resource is as narrow as it can be: the reasons of the cdk-nag IAM5 suppressions.
WILDCARD_REASONS: dict[On, str] = {
    On.ANY: "no resource type in the Service Authorization Reference (s3:GetBucketPolicy: the media-pipelines "
    "developer guide requires it on all resources), so Resource must be *",
    On.BEDROCK_MODEL: "the configured model only: an EU cross-region inference profile routes each request to the "
    "same foundation model in one of the EU regions it spans, which Bedrock authorizes in that region, so the "
    "model is allowed in eu-* regions (the profile's destinations, all EU)",
    On.MEETING: "meeting ids come from Chime at run time; the pattern is this account's and region's meetings only",
    On.MEDIA_PIPELINE: "pipeline ids come from Chime at run time; the pattern is this account's and region's "
    "media pipelines only",
    On.RECORDINGS_OBJECTS: "object keys (appointment/meeting/recording) are made at run time; the pattern is the "
    "recordings/ prefix of the recordings bucket only",
    On.ATTACHMENTS_OBJECTS: "object keys (appointment/attachment id) are made at run time; the pattern is the "
    "attachments/ prefix of the chat's attachments bucket only",
}
# The prefix every chat attachment object is under (videocall.chat.storage).
ATTACHMENTS_PREFIX = "attachments/"


def iam_action(name: str) -> str:
    """The IAM action of a route's action name: `s3:GetObject@attachments` -> `s3:GetObject`."""
    return name.split("@", 1)[0]


class UnknownAwsAction(ValueError):
    """A route lists an action this table does not know: add it with its SAR resource type."""


@dataclass(frozen=True)
class RecordingsResources:
    """The resources route actions are scoped to."""

    bucket: s3.IBucket
    key: kms.IKey
    sink_role: iam.IRole
    # The Bedrock model the clinical summary uses; None when clinicalSummary is off.
    bedrock: BedrockModel | None = None
    # The chat's attachments bucket and key (infra/components/attachments.py).
    attachments: AttachmentsResources | None = None
    # The FCM service-account secret and the key it is encrypted with (infra/components/push.py).
    push: PushResources | None = None


@dataclass(frozen=True)
class PushResources:
    secret: secretsmanager.ISecret
    key: kms.IKey


@dataclass(frozen=True)
class AttachmentsResources:
    bucket: s3.IBucket
    key: kms.IKey


@dataclass(frozen=True)
class BedrockModel:
    region: str
    model_id: str

    @property
    def geography(self) -> str | None:
        return inference_profile_geography(self.model_id)

    @property
    def foundation_model_id(self) -> str:
        """The model id without an inference profile's geography prefix."""
        return self.model_id.split(".", 1)[1] if self.geography else self.model_id

    def resources(self) -> tuple[list[str], tuple[str, ...]]:
        """The ARNs bedrock:InvokeModel is granted on, and the wildcard ones as cdk-nag spells them."""
        partition, nag_partition = Aws.PARTITION, "<AWS::Partition>"
        if self.geography is None:
            return [f"arn:{partition}:bedrock:{self.region}::foundation-model/{self.model_id}"], ()
        models = f"bedrock:{self.geography}-*::foundation-model/{self.foundation_model_id}"
        return (
            [
                f"arn:{partition}:bedrock:{self.region}:{Aws.ACCOUNT_ID}:inference-profile/{self.model_id}",
                f"arn:{partition}:{models}",
            ],
            (f"Resource::arn:{nag_partition}:{models}",),
        )


def switched_off(config: StageConfig) -> frozenset[str]:
    """Actions routes list that this configuration never calls, so no role gets them."""
    off = set()
    if not config.clinical_summary:
        off.add("bedrock:InvokeModel")
    if not config.icd10_inference:
        off.add("comprehendmedical:InferICD10CM")
    return frozenset(off)


@dataclass(frozen=True)
class Grant:
    """One statement for one kind of resource, and the wildcard resources it names as cdk-nag spells them."""

    on: On
    actions: tuple[str, ...]
    statement: iam.PolicyStatement
    nag_wildcards: tuple[str, ...]

    @property
    def wildcard_reason(self) -> str:
        return f"{', '.join(self.actions)}: {WILDCARD_REASONS[self.on]}"


def check_actions(actions: Iterable[str], *, who: str) -> tuple[str, ...]:
    """The actions, sorted and deduplicated; UnknownAwsAction for one the table lacks or one missing its
    companions."""
    wanted = tuple(sorted(set(actions)))
    unknown = [a for a in wanted if a not in RESOURCE_TYPES]
    if unknown:
        raise UnknownAwsAction(
            f"{who}: no resource type known for {', '.join(unknown)}; add it to RESOURCE_TYPES in "
            "infra/components/iam.py with the resource type the Service Authorization Reference gives it"
        )
    for action in wanted:
        missing = [r for r in REQUIRES.get(action, ()) if r not in wanted]
        if missing:
            raise UnknownAwsAction(f"{who}: {action} does not work without {', '.join(missing)}; list it too")
    return wanted


def grants_for(
    actions: Iterable[str], resources: RecordingsResources, *, who: str, off: frozenset[str] = frozenset()
) -> list[Grant]:
    """Least-privilege statements for `actions` (less those switched `off`), one per kind of resource."""
    by_kind: dict[On, list[str]] = {}
    for action in check_actions(actions, who=who):
        if action not in off:
            by_kind.setdefault(RESOURCE_TYPES[action], []).append(action)
    for on in list(by_kind):
        if on in COMPANIONS:
            companion, companion_actions = COMPANIONS[on]
            by_kind[companion] = list(companion_actions)
    return [_grant(on, tuple(found), resources) for on, found in sorted(by_kind.items(), key=lambda i: i[0].value)]


def _grant(on: On, actions: tuple[str, ...], r: RecordingsResources) -> Grant:
    chime = f"arn:{Aws.PARTITION}:chime:{Aws.REGION}:{Aws.ACCOUNT_ID}"
    nag_chime = "arn:<AWS::Partition>:chime:<AWS::Region>:<AWS::AccountId>"
    conditions: dict[str, dict[str, object]] | None = None
    nag: tuple[str, ...] = ()
    if on is On.ANY:
        resources, nag = ["*"], ("Resource::*",)
    elif on is On.MEETING:
        resources, nag = [f"{chime}:meeting/*"], (f"Resource::{nag_chime}:meeting/*",)
    elif on is On.MEDIA_PIPELINE:
        resources, nag = [f"{chime}:media-pipeline/*"], (f"Resource::{nag_chime}:media-pipeline/*",)
    elif on is On.SINK_ROLE:
        resources = [r.sink_role.role_arn]
        conditions = {
            "StringEquals": {"iam:PassedToService": MEDIA_PIPELINES},
            # Any region: a pipeline's ARN carries the media region it runs in.
            "ArnLike": {"iam:AssociatedResourceArn": f"arn:{Aws.PARTITION}:chime:*:{Aws.ACCOUNT_ID}:media-pipeline/*"},
        }
    elif on is On.RECORDINGS_BUCKET:
        resources = [r.bucket.bucket_arn]
        # The code always lists with a Prefix under recordings/ (videocall.core.storage).
        conditions = {"StringLike": {"s3:prefix": [f"{RECORDINGS_PREFIX}*"]}}
    elif on is On.BEDROCK_MODEL:
        if r.bedrock is None:
            raise UnknownAwsAction(f"{', '.join(actions)}: no Bedrock model configured (clinicalSummary is off)")
        resources, nag = r.bedrock.resources()
    elif on is On.RECORDINGS_OBJECTS:
        resources = [r.bucket.arn_for_objects(f"{RECORDINGS_PREFIX}*")]
        nag = (f"Resource::<{logical_id(r.bucket)}.Arn>/{RECORDINGS_PREFIX}*",)
    elif on in (On.ATTACHMENTS_BUCKET, On.ATTACHMENTS_OBJECTS, On.ATTACHMENTS_KEY):
        if r.attachments is None:
            raise UnknownAwsAction(f"{', '.join(actions)}: no attachments bucket given")
        a = r.attachments
        if on is On.ATTACHMENTS_BUCKET:
            resources = [a.bucket.bucket_arn]
            conditions = {"StringLike": {"s3:prefix": [f"{ATTACHMENTS_PREFIX}*"]}}
        elif on is On.ATTACHMENTS_OBJECTS:
            resources = [a.bucket.arn_for_objects(f"{ATTACHMENTS_PREFIX}*")]
            nag = (f"Resource::<{logical_id(a.bucket)}.Arn>/{ATTACHMENTS_PREFIX}*",)
        else:  # S3 encrypting (presigned POST) and decrypting (presigned GET) for this role, nothing else
            resources = [a.key.key_arn]
            conditions = {"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}
    elif on in (On.PUSH_SECRET, On.PUSH_SECRET_KEY):
        if r.push is None:
            raise UnknownAwsAction(f"{', '.join(actions)}: no push credentials secret given")
        if on is On.PUSH_SECRET:
            resources = [r.push.secret.secret_arn]
        else:  # Secrets Manager decrypting that secret for this role, nothing else
            resources = [r.push.key.key_arn]
            conditions = {"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}}
    else:  # On.RECORDINGS_KEY: S3 decrypting objects for this role (GetObject, download links), nothing else.
        resources = [r.key.key_arn]
        conditions = {"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}}
    statement = iam.PolicyStatement(
        actions=sorted({iam_action(a) for a in actions}), resources=resources, conditions=conditions
    )
    return Grant(on=on, actions=actions, statement=statement, nag_wildcards=nag)


def logical_id(construct: s3.IBucket | iam.IRole | kms.IKey) -> str:
    """The CloudFormation logical id of an L2 construct's resource (how cdk-nag names its ARN: <Id.Arn>)."""
    return Stack.of(construct).get_logical_id(cast(CfnElement, construct.node.default_child))
