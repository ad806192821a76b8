"""The CDK app's part for the chat: the attachments bucket and its own key, GuardDuty Malware Protection on
it, the functions' environment, and the chat routes' IAM scoped to the attachments bucket and key (never
the recordings bucket, never `*`). Uses the stacks tests/test_infra.py synthesizes (and shares its cache)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from test_infra import Synth, as_list, render, synthesized

from infra.components.attachments import GUARDDUTY_MALWARE
from infra.components.iam import RESOURCE_TYPES, On, iam_action

CHAT_ROUTES = ("post_message", "list_messages", "mark_messages_read", "put_reaction", "delete_reaction",
               "create_attachment", "get_attachment")  # fmt: skip


@pytest.fixture(scope="module")
def dev() -> Synth:
    return synthesized("dev")


@pytest.fixture(scope="module")
def prod() -> Synth:
    return synthesized("prod")


def attachments_bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in synth.resources("AWS::S3::Bucket").items() if k.startswith("AttachmentsBucket")]
    return found


def test_the_attachments_bucket_has_its_own_key_and_the_recordings_buckets_protections(dev: Synth):
    name, bucket = attachments_bucket(dev)
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key = dev.logical_id("AWS::KMS::Key", "AttachmentsKey")
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]}}  # fmt: skip
    assert key != dev.logical_id("AWS::KMS::Key", "KeysRecordingsKey")
    assert dev.resources("AWS::KMS::Key")[key]["Properties"]["EnableKeyRotation"] is True
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}  # fmt: skip
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    access_logs = dev.logical_id("AWS::S3::Bucket", "RecordingsAccessLogs")
    assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": access_logs},
                                             "LogFilePrefix": "attachments/"}  # fmt: skip
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == 90 + 7 and lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    policies = [
        p for p in dev.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": name}
    ]
    (policy,) = policies
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)  # TLS only


def test_guardduty_malware_protection_scans_the_bucket_and_tags_objects(dev: Synth):
    name, _ = attachments_bucket(dev)
    ((plan_id, plan),) = dev.resources("AWS::GuardDuty::MalwareProtectionPlan").items()
    props = plan["Properties"]
    assert props["ProtectedResource"]["S3Bucket"] == {"BucketName": {"Ref": name}, "ObjectPrefixes": ["attachments/"]}
    assert props["Actions"] == {"Tagging": {"Status": "ENABLED"}}
    role_id = props["Role"]["Fn::GetAtt"][0]
    role = dev.resources("AWS::IAM::Role")[role_id]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": GUARDDUTY_MALWARE}
    statements = [s for p in dev.resources("AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"AllowManagedRuleToSendS3EventsToGuardDuty", "AllowGuardDutyToMonitorEventBridgeManagedRule",
                           "AllowPostScanTag", "AllowEnableS3EventBridgeEvents", "AllowPutValidationObject",
                           "AllowCheckBucketOwnership", "AllowMalwareScan", "AllowDecryptForMalwareScan"}  # fmt: skip
    bucket_arn = f"<{name}.Arn>"
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            rendered = render(resource)
            assert rendered.startswith((bucket_arn, "<AttachmentsKey", "arn:<AWS::Partition>:events:")), rendered
    assert render(by_sid["AllowPostScanTag"]["Resource"]) == f"{bucket_arn}/*"
    # The plan waits for its role's policy (GuardDuty validates the role when the plan is created).
    policy_id = next(
        k for k, p in dev.resources("AWS::IAM::Policy").items() if {"Ref": role_id} in p["Properties"]["Roles"]
    )
    assert policy_id in as_list(plan.get("DependsOn", []))
    assert plan_id


def test_only_guardduty_may_tag_attachment_objects(dev: Synth):
    """The verdict tag decides whether a file is handed out: no function may write object tags."""
    taggers = [s for p in dev.resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
               if "s3:PutObjectTagging" in as_list(s["Action"])]  # fmt: skip
    assert len(taggers) == 1 and taggers[0]["Sid"] == "AllowPostScanTag"


def test_the_functions_know_the_bucket_its_key_and_require_the_scan(dev: Synth):
    name, _ = attachments_bucket(dev)
    key = dev.logical_id("AWS::KMS::Key", "AttachmentsKey")
    for function in dev.function_by_name().values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["ATTACHMENTS_BUCKET"] == {"Ref": name}
        assert env["ATTACHMENTS_KMS_KEY_ARN"] == {"Fn::GetAtt": [key, "Arn"]}
        assert env["ATTACHMENT_SCAN_REQUIRED"] == "true" and env["RETENTION_DAYS_CHAT"] == "90"


def test_chat_routes_are_granted_on_the_attachments_bucket_and_key_only(dev: Synth):
    name, _ = attachments_bucket(dev)
    key = dev.logical_id("AWS::KMS::Key", "AttachmentsKey")
    allowed = {f"<{name}.Arn>", f"<{name}.Arn>/attachments/*", f"<{key}.Arn>"}
    roles = dev.role_statements()
    granted: dict[str, set[str]] = {}
    for route in CHAT_ROUTES:
        for statement in roles[route]:
            actions = [a for a in as_list(statement["Action"]) if a.startswith(("s3:", "kms:"))]
            if actions:
                resources = {render(r) for r in as_list(statement["Resource"])}
                assert resources <= allowed, (route, actions, resources)
                granted.setdefault(route, set()).update(actions)
    assert granted == {"create_attachment": {"s3:PutObject", "kms:GenerateDataKey"},
                       "get_attachment": {"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "kms:Decrypt"}}  # fmt: skip
    # Erasure and retention may delete attachments, export may link to them: on the attachments resources too.
    for route, action in (("erase", "s3:DeleteObjectVersion"), ("apply_retention", "s3:DeleteObjectVersion"),
                          ("export_patient", "s3:GetObjectTagging")):  # fmt: skip
        resources = {render(r) for s in roles[route] if action in as_list(s["Action"]) for r in as_list(s["Resource"])}
        assert f"<{name}.Arn>/attachments/*" in resources, route


def test_the_attachment_actions_map_to_their_own_resource_kinds():
    qualified = [a for a in RESOURCE_TYPES if a.endswith("@attachments")]
    assert qualified and all(RESOURCE_TYPES[a] in (On.ATTACHMENTS_BUCKET, On.ATTACHMENTS_OBJECTS, On.ATTACHMENTS_KEY)
                             for a in qualified)  # fmt: skip
    assert iam_action("s3:GetObject@attachments") == "s3:GetObject" and iam_action("s3:GetObject") == "s3:GetObject"
    assert RESOURCE_TYPES["s3:GetObject"] is On.RECORDINGS_OBJECTS  # the unqualified action stays the recordings'


def test_no_nag_finding_on_the_attachments_constructs(dev: Synth, prod: Synth):
    for synth in (dev, prod):
        for finder in (synth.annotations.find_error, synth.annotations.find_warning):
            findings = finder("/*/Attachments/*", Match.string_like_regexp("(AwsSolutions|HIPAA\\.Security).*"))
            assert findings == [], [f.id for f in findings]


def test_prod_retains_the_bucket_and_key_and_chat_retention_is_a_context_setting(prod: Synth):
    name, bucket = attachments_bucket(prod)
    assert bucket["DeletionPolicy"] == "Retain"
    assert (
        prod.resources("AWS::KMS::Key")[prod.logical_id("AWS::KMS::Key", "AttachmentsKey")]["DeletionPolicy"]
        == "Retain"
    )
    custom = Synth("chat-retention", {"stage": "chatret", "chatRetentionDays": 30})
    _, short = attachments_bucket(custom)
    assert short["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 37
    env = next(iter(custom.function_by_name().values()))["Properties"]["Environment"]["Variables"]
    assert env["RETENTION_DAYS_CHAT"] == "30" and name
