"""The CDK app: cdk-nag AwsSolutions + HIPAA.Security with no unsuppressed finding, and the properties ops
and auditors rely on, asserted on the synthesized templates (bundling skipped; one test bundles for real).

Each configuration is synthesized once per module (about 6 s each) and shared by every test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, NestedStack
from aws_cdk.assertions import Annotations, Match, Template
from videocall.routes import EVENT_ROUTES, ROUTES, SCHEDULED_JOBS

from infra.app import build
from infra.bundling import UNZIPPED_LIMIT_BYTES, build_bundle, bundle_size, lambda_interpreter
from infra.components.events import EVENT_ROUTE_SIZING
from infra.components.iam import RESOURCE_TYPES, On, UnknownAwsAction, check_actions, iam_action, switched_off
from infra.config import EU_REGIONS, ConfigError, StageConfig, inference_profile_geography

ROOT = Path(__file__).resolve().parents[1]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
EXTERNAL_SECRET = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:videocall/db-AbCdEf"
STAGES = {
    "dev": {},
    "prod": {"stage": "prod", "alarmEmails": ["oncall@example.org"]},
    "external": {"stage": "staging", "databaseMode": "external", "externalDatabaseSecretArn": EXTERNAL_SECRET},
    # The clinical summary on: Bedrock on a foundation model, then on an EU inference profile (ICD-10 off).
    "clinical": {"stage": "clinical", "clinicalSummary": True},
    "profile": {"stage": "profile", "clinicalSummary": True, "icd10Inference": False,
                "bedrockModelId": "eu.anthropic.claude-3-haiku-20240307-v1:0"},
}  # fmt: skip
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
# What bedrock:InvokeModel may be granted on, per configuration, as render() spells it (nothing: not granted).
BEDROCK_RESOURCES = {
    "dev": set(),
    "prod": set(),
    "external": set(),
    "clinical": {f"arn:<AWS::Partition>:bedrock:eu-central-1::foundation-model/{HAIKU}"},
    "profile": {f"arn:<AWS::Partition>:bedrock:eu-central-1:<AWS::AccountId>:inference-profile/eu.{HAIKU}",
                f"arn:<AWS::Partition>:bedrock:eu-*::foundation-model/{HAIKU}"},
}  # fmt: skip
MEDIA_PIPELINES = "mediapipelines.chime.amazonaws.com"
# Every function's route record: API routes, event routes, scheduled jobs (migrate_database has none).
ALL_ROUTES = {r.name: r for r in (*ROUTES, *EVENT_ROUTES, *SCHEDULED_JOBS)}


class Synth:
    def __init__(self, name: str, overrides: dict[str, Any]) -> None:
        self.name = name
        app = App(context={**CDK_CONTEXT, "aws:cdk:bundling-stacks": [], **overrides})
        self.config = StageConfig.from_context(app.node)
        self.stack = build(app)
        self.template = Template.from_stack(self.stack)
        self.json = self.template.to_json()
        self.annotations = Annotations.from_stack(self.stack)
        self.nested = [c for c in self.stack.node.find_all() if isinstance(c, NestedStack)]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """The stack's resources of `kind`, and its nested stacks' as if they were the stack's own (a Ref
        to a nested stack's parameter is replaced by what the parent passes to it)."""
        found = dict(self.template.find_resources(kind))
        for nested in self.nested:
            logical_id = self.stack.resolve(nested.nested_stack_resource.logical_id)  # type: ignore[union-attr]
            passed = self.json["Resources"][logical_id]["Properties"].get("Parameters", {})
            text = json.dumps(Template.from_stack(nested).find_resources(kind))
            for name, value in passed.items():
                text = text.replace(json.dumps({"Ref": name}), json.dumps(value))
            found.update(json.loads(text))
        return found

    def functions(self) -> dict[str, dict[str, Any]]:
        """Our functions (CDK's own custom-resource providers are Node.js and not ours)."""
        return {k: v for k, v in self.resources("AWS::Lambda::Function").items()
                if str(v["Properties"].get("Runtime", "")).startswith("python")}  # fmt: skip

    def logical_id(self, kind: str, prefix: str) -> str:
        (found,) = [k for k in self.resources(kind) if k.startswith(prefix)]
        return found

    def function_by_name(self) -> dict[str, dict[str, Any]]:
        """Our functions by route name (videocall-<stage>-<name>)."""
        return {
            f["Properties"]["FunctionName"].split("-", 2)[2].replace("-", "_"): f for f in self.functions().values()
        }

    def role_statements(self) -> dict[str, list[dict[str, Any]]]:
        """Each function's (by route name) IAM statements: its role's policies."""
        roles: dict[str, list[dict[str, Any]]] = {}
        for policy in self.resources("AWS::IAM::Policy").values():
            for role in policy["Properties"]["Roles"]:
                roles.setdefault(role["Ref"], []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return {name: roles.get(f["Properties"]["Role"]["Fn::GetAtt"][0], [])
                for name, f in self.function_by_name().items()}  # fmt: skip


_SYNTHS: dict[str, Synth] = {}


def synthesized(stage: str) -> Synth:
    if stage not in _SYNTHS:
        _SYNTHS[stage] = Synth(stage, STAGES[stage])
    return _SYNTHS[stage]


@pytest.fixture(scope="module", params=list(STAGES))
def synth(request: pytest.FixtureRequest) -> Synth:
    return synthesized(request.param)


@pytest.fixture(scope="module")
def dev() -> Synth:
    return synthesized("dev")


@pytest.fixture(scope="module")
def prod() -> Synth:
    return synthesized("prod")


def render(value: Any) -> str:
    """A resource as cdk-nag spells it: Ref X -> <X>, GetAtt X.Arn -> <X.Arn>, joins concatenated."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    return json.dumps(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_nag_packs_report_nothing_unsuppressed(synth: Synth):
    # (a nested stack's findings are reported on its parent's artifact)
    for finder in (synth.annotations.find_error, synth.annotations.find_warning):
        findings = finder("*", Match.string_like_regexp("(AwsSolutions|HIPAA\\.Security|CdkNag).*"))
        assert findings == [], "\n".join(f"{f.id}: {str(f.entry.data)[:160]}" for f in findings)


def test_every_suppression_names_a_rule_and_a_specific_reason(synth: Synth):
    reasons = []
    for resource in synth.json["Resources"].values():
        for suppression in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert suppression["id"] and len(suppression["reason"]) >= 40, suppression
            reasons.append(suppression["reason"])
    assert reasons


def test_one_function_per_route_event_route_and_job(synth: Synth):
    handlers = sorted(f["Properties"]["Handler"] for f in synth.functions().values())
    expected = sorted([r.handler for r in ALL_ROUTES.values()] + ["handlers.migrate_database.handler"])
    assert handlers == expected
    methods = synth.resources("AWS::ApiGateway::Method")
    assert sorted(
        m["Properties"]["HttpMethod"] for m in methods.values() if m["Properties"]["HttpMethod"] != "OPTIONS"
    ) == (sorted(r.method for r in ROUTES))


def test_every_function_is_python_313_arm64_traced_in_the_vpc_without_emulators(synth: Synth):
    for name, function in synth.functions().items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["VpcConfig"]["SubnetIds"], name
        env = props["Environment"]["Variables"]
        assert "FIREBASE_AUTH_EMULATOR_HOST" not in env, name
        assert env["CHIME_BACKEND"] == "aws" and env["STAGE"] != "local", name
        assert props["KmsKeyArn"], name
        assert props["ReservedConcurrentExecutions"] >= 1, name
        assert props["LoggingConfig"]["LogGroup"], name


def test_log_groups_have_retention_and_kms(synth: Synth):
    for name, group in synth.resources("AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] >= 365, name
        assert "KmsKeyId" in group["Properties"], name


def test_functions_are_told_where_recordings_go_and_the_recording_settings(synth: Synth):
    recordings_key = synth.logical_id("AWS::KMS::Key", "KeysRecordingsKey")
    sink_role = synth.logical_id("AWS::IAM::Role", "RecordingsPipelineSinkRole")
    bucket = synth.logical_id("AWS::S3::Bucket", "RecordingsBucket")
    for name, function in synth.function_by_name().items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["RECORDINGS_BUCKET"] == {"Ref": bucket}, name
        assert env["RECORDINGS_KMS_KEY_ARN"] == {"Fn::GetAtt": [recordings_key, "Arn"]}, name
        assert env["PIPELINE_SINK_ROLE_ARN"] == {"Fn::GetAtt": [sink_role, "Arn"]}, name
        assert env["RECORDINGS_BUCKET_REGION"] == env["CHIME_MEDIA_REGION"] == CDK_CONTEXT["region"], name
        assert env["RETENTION_DAYS_RECORDINGS"] == str(CDK_CONTEXT["recordingRetentionDays"]), name
        assert env["EMPTY_MEETING_GRACE_SECONDS"] == "120" and env["RECORDING_LINK_SECONDS"] == "900", name
        assert env["RECORDING_LINKS_FOR_PATIENT"] == "false" and env["RECORDING_INDIVIDUAL_VIDEO"] == "false", name
        assert env["CONSENT_SOURCE"] == "patient", name


def test_keys_rotate(synth: Synth):
    keys = synth.resources("AWS::KMS::Key")
    # data (database, secrets, logs), recordings, chat attachments: each store its own key
    assert len(keys) == 3 and all(k["Properties"]["EnableKeyRotation"] for k in keys.values())


def test_recordings_bucket_is_kms_encrypted_private_and_writable_only_by_chime(dev: Synth):
    bucket = dev.logical_id("AWS::S3::Bucket", "RecordingsBucket")
    sink_role = dev.logical_id("AWS::IAM::Role", "RecordingsPipelineSinkRole")
    props = dev.resources("AWS::S3::Bucket")[bucket]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "KMSMasterKeyID" in rule["ServerSideEncryptionByDefault"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "LoggingConfiguration" in props
    # The app's retention job deletes first; the lifecycle rule is the backstop a week later.
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == CDK_CONTEXT["recordingRetentionDays"] + 7
    assert lifecycle["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}

    (policy,) = [
        p for p in dev.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    allows = [s for s in statements if s["Effect"] == "Allow"]
    chime = [s for s in allows if s["Principal"] == {"Service": MEDIA_PIPELINES}]
    assert len(chime) == 1
    # Put to write captures; Get/List for concatenation reading them back.
    assert sorted(chime[0]["Action"]) == ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:PutObjectAcl"]
    assert set(chime[0]["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in chime[0]["Condition"]["StringEquals"]
    assert "aws:SourceArn" in chime[0]["Condition"]["ArnLike"]
    # The only other principal allowed in is the pipeline sink role; nothing is public.
    for statement in allows:
        assert statement["Principal"] in ({"Service": MEDIA_PIPELINES}, {"AWS": {"Fn::GetAtt": [sink_role, "Arn"]}})


def test_recordings_key_lets_chime_and_the_sink_role_encrypt_for_this_account_only(dev: Synth):
    recordings_key = dev.logical_id("AWS::KMS::Key", "KeysRecordingsKey")
    sink_role = dev.logical_id("AWS::IAM::Role", "RecordingsPipelineSinkRole")
    key_statements = dev.resources("AWS::KMS::Key")[recordings_key]["Properties"]["KeyPolicy"]["Statement"]
    chime = [s for s in key_statements if s.get("Principal") == {"Service": MEDIA_PIPELINES}]
    assert len(chime) == 1 and sorted(chime[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert "aws:SourceAccount" in chime[0]["Condition"]["StringEquals"]
    role = [s for s in key_statements if s.get("Principal") == {"AWS": {"Fn::GetAtt": [sink_role, "Arn"]}}]
    assert len(role) == 1 and sorted(role[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_pipeline_sink_role_is_for_media_pipelines_and_writes_under_the_recordings_key(synth: Synth):
    sink_role = synth.logical_id("AWS::IAM::Role", "RecordingsPipelineSinkRole")
    recordings_key = synth.logical_id("AWS::KMS::Key", "KeysRecordingsKey")
    bucket = synth.logical_id("AWS::S3::Bucket", "RecordingsBucket")
    (trust,) = synth.resources("AWS::IAM::Role")[sink_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": MEDIA_PIPELINES} and trust["Action"] == "sts:AssumeRole"
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert ":chime:*:" in render(trust["Condition"]["ArnLike"]["aws:SourceArn"])
    granted: dict[str, set[str]] = {}
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": sink_role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                for action in as_list(statement["Action"]):
                    granted.setdefault(action, set()).update(render(r) for r in as_list(statement["Resource"]))
    assert granted["kms:GenerateDataKey"] == {f"<{recordings_key}.Arn>"}
    assert granted["kms:Decrypt"] == {f"<{recordings_key}.Arn>"}
    for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:GetObject"):
        assert granted[action] == {f"<{bucket}.Arn>/recordings/*"}, action
    assert granted["s3:ListBucket"] == {f"<{bucket}.Arn>"}
    assert set(granted) == {"kms:GenerateDataKey", "kms:Decrypt", "s3:PutObject", "s3:PutObjectAcl", "s3:GetObject",
                            "s3:ListBucket"}  # fmt: skip


def test_cloudtrail_records_data_events_of_the_recordings_bucket_in_a_validated_encrypted_trail(synth: Synth):
    bucket = synth.logical_id("AWS::S3::Bucket", "RecordingsBucket")
    (trail,) = synth.resources("AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    assert props["EnableLogFileValidation"] is True and props["IsLogging"] is True
    assert "KMSKeyId" in props and "CloudWatchLogsLogGroupArn" in props
    covered = [
        (render(value), selector["ReadWriteType"])
        for selector in props["EventSelectors"]
        for resource in selector["DataResources"]
        if resource["Type"] == "AWS::S3::Object"
        for value in resource["Values"]
    ]
    assert (f"<{bucket}.Arn>/", "All") in covered  # every object, reads and writes
    trail_bucket = synth.resources("AWS::S3::Bucket")[props["S3BucketName"]["Ref"]]["Properties"]
    encryption = trail_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "LoggingConfiguration" in trail_bucket and trail_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (policy,) = [p for p in synth.resources("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == props["S3BucketName"]]  # fmt: skip
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Properties"]["PolicyDocument"]["Statement"])  # fmt: skip


def test_database_proxy_requires_tls_and_iam(dev: Synth):
    (proxy,) = dev.resources("AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["Auth"][0]["IAMAuth"] == "REQUIRED"
    (cluster,) = dev.resources("AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["StorageEncrypted"] is True and "KmsKeyId" in cluster["Properties"]
    assert cluster["Properties"]["EnableIAMDatabaseAuthentication"] is True
    for function in dev.functions().values():
        assert function["Properties"]["Environment"]["Variables"]["DB_AUTH"] == "iam"


def test_prod_database_is_protected(prod: Synth):
    (cluster,) = prod.resources("AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["Properties"]["BackupRetentionPeriod"] == 35
    assert len(prod.resources("AWS::RDS::DBInstance")) == 2  # writer + reader in another AZ


def test_external_database_mode_uses_the_secret_and_no_cluster():
    external = synthesized("external")
    assert external.resources("AWS::RDS::DBCluster") == {}
    for function in external.functions().values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["DB_AUTH"] == "secret" and env["DB_SECRET_ARN"] == EXTERNAL_SECRET


def test_chime_event_rules_have_retries_and_encrypted_dead_letter_queues(synth: Synth):
    rules = [r for r in synth.resources("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(rules) == len(EVENT_ROUTES)
    for rule in rules:
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.chime"]
        assert pattern["detail-type"][0] in {r.detail_type for r in EVENT_ROUTES}
        (target,) = rule["Properties"]["Targets"]
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    for queue in synth.resources("AWS::SQS::Queue").values():
        assert "KmsMasterKeyId" in queue["Properties"]


def target_function(synth: Synth, rule: dict[str, Any]) -> str:
    """The route name of the function a rule's (only) target invokes."""
    (target,) = rule["Properties"]["Targets"]
    function = synth.functions()[target["Arn"]["Fn::GetAtt"][0]]
    return str(function["Properties"]["FunctionName"]).split("-", 2)[2].replace("-", "_")


def test_pipeline_events_have_their_own_rule_and_function(synth: Synth):
    by_type = {r["Properties"]["EventPattern"]["detail-type"][0]: r for r in synth.resources("AWS::Events::Rule").values()
               if "EventPattern" in r["Properties"]}  # fmt: skip
    assert target_function(synth, by_type["Chime Media Pipeline State Change"]) == "chime_pipeline_events"
    assert target_function(synth, by_type["Chime Meeting State Change"]) == "chime_meeting_events"


def test_scheduled_jobs_run_on_their_schedules_one_at_a_time_with_dead_letter_queues(synth: Synth):
    schedules = {r["Properties"]["ScheduleExpression"]: r for r in synth.resources("AWS::Events::Rule").values()
                 if "ScheduleExpression" in r["Properties"]}  # fmt: skip
    assert len(schedules) == len(SCHEDULED_JOBS)
    assert target_function(synth, schedules["rate(1 minute)"]) == "reconcile"
    assert target_function(synth, schedules["cron(15 2 * * ? *)"]) == "apply_retention"
    functions = synth.function_by_name()
    for job in SCHEDULED_JOBS:
        rule = schedules[job.schedule]
        (target,) = rule["Properties"]["Targets"]
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 1, job.name
        props = functions[job.name]["Properties"]
        assert props["Timeout"] == job.timeout_seconds, job.name
        assert props["DeadLetterConfig"]["TargetArn"], job.name
        assert props["ReservedConcurrentExecutions"] == 1, job.name  # runs never overlap


def alarms_by_metric(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        if "MetricName" in alarm["Properties"]:
            found.setdefault(alarm["Properties"]["MetricName"], []).append(alarm["Properties"])
    return found


def test_alarms_cover_5xx_errors_throttles_dlq_and_database(dev: Synth):
    alarms = dev.resources("AWS::CloudWatch::Alarm")
    descriptions = " ".join(a["Properties"]["AlarmDescription"] for a in alarms.values())
    assert "5xx" in descriptions and "DLQ" in descriptions and "Database CPU" in descriptions
    for function_name in [r.name for r in ROUTES]:
        assert f"{function_name}: invocations failed" in descriptions
        assert f"{function_name}: invocations failed" in descriptions  # errors and throttles: one alarm
    assert descriptions.count("or throttled (reserved concurrency") == len(dev.functions())
    (topic_ref,) = {json.dumps(a["Properties"]["AlarmActions"]) for a in alarms.values()}
    assert "Alarms" in topic_ref
    (topic,) = dev.resources("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    for alarm in alarms.values():  # what it means and what to do, in one sentence
        description = alarm["Properties"]["AlarmDescription"]
        assert ": " in description and ". " not in description.rstrip("."), description


def test_alarms_cover_recordings_the_jobs_and_every_dead_letter_queue(dev: Synth):
    by_metric = alarms_by_metric(dev)
    service = {"Name": "service", "Value": "videocall"}
    (failures,) = by_metric["RecordingFailures"]
    assert failures["Namespace"] == "Telehealth/VideoCall" and failures["Dimensions"] == [service]
    assert failures["Threshold"] == 1 and failures["Period"] == 300 and failures["Statistic"] == "Sum"
    assert failures["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (stuck,) = [a for a in by_metric["Failures"] if {"Name": "cause", "Value": "recording_stuck"} in a["Dimensions"]]
    assert service in stuck["Dimensions"] and stuck["Threshold"] == 1
    queues = dev.resources("AWS::SQS::Queue")
    watched = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in by_metric["ApproximateNumberOfMessagesVisible"]}
    assert watched == set(queues) and len(queues) == len(EVENT_ROUTES) + len(SCHEDULED_JOBS)
    functions = {f["Properties"]["FunctionName"]: k for k, f in dev.functions().items()}
    reconcile = functions["videocall-dev-reconcile"]
    # one alarm per function on errors + throttles (metric math)
    per_function = {}
    for found in dev.resources("AWS::CloudWatch::Alarm").values():
        stats = [m["MetricStat"]["Metric"] for m in found["Properties"].get("Metrics", []) if "MetricStat" in m]
        if {m["MetricName"] for m in stats} == {"Errors", "Throttles"}:
            (function_ref,) = {m["Dimensions"][0]["Value"]["Ref"] for m in stats}
            per_function.setdefault(function_ref, []).append(found["Properties"])
    assert set(per_function) == set(dev.functions()) and all(len(v) == 1 for v in per_function.values())
    (reconcile_alarm,) = per_function[reconcile]
    assert "scheduled run failed" in reconcile_alarm["AlarmDescription"] and "throttled" in reconcile_alarm[
        "AlarmDescription"]  # fmt: skip
    assert reconcile_alarm["Threshold"] == 1


def test_rds_proxy_pinning_is_alarmed_and_graphed(dev: Synth):
    """The functions use server-side prepared statements through RDS Proxy: if the proxy ever pinned
    sessions for them, on-call sees it, with what to do (DB_PREPARE_THRESHOLD=off)."""
    (pinning,) = alarms_by_metric(dev)["DatabaseConnectionsCurrentlySessionPinned"]
    assert pinning["Namespace"] == "AWS/RDS" and pinning["Dimensions"][0]["Name"] == "ProxyName"
    assert pinning["Threshold"] == 20 and pinning["EvaluationPeriods"] == 3
    assert "DB_PREPARE_THRESHOLD=off" in pinning["AlarmDescription"]
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "ClientConnections" in body and "DatabaseConnectionsCurrentlySessionPinned" in body


def test_every_template_leaves_room_under_cloudformations_500_resources(synth: Synth):
    """The alarms (one per function) live in a nested stack: the parent had reached 475 of 500, and
    the next context would not have fit. A nested template takes at most 200 parameters."""
    assert len(synth.json["Resources"]) <= 480  # past it: a context's functions into a nested stack
    for nested in synth.nested:
        template = Template.from_stack(nested).to_json()
        assert len(template["Resources"]) <= 480 and len(template.get("Parameters", {})) <= 150


def test_alarm_emails_subscribe_to_the_topic(prod: Synth):
    subscriptions = prod.resources("AWS::SNS::Subscription")
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == ["oncall@example.org"]


def test_dashboard_shows_api_functions_database_and_business_metrics(dev: Synth):
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("5XXError", "4XXError", "Latency", "p99", "Throttles", "ConcurrentExecutions", "Duration",
                   "DatabaseConnections", "CPUUtilization", "MeetingsCreated", "MeetingsEnded", "Joins",
                   "JoinLatency", "Failures", "RecordingsStarted", "RecordingsCompleted", "RecordingFailures",
                   "RecordingProcessingSeconds", "MeetingDuration", "MeetingsEndedEmpty", "AttendeesDropped",
                   "RecordingLinksIssued", "ObjectVersionsDeleted", "TranscriptionsStarted", "TranscriptsBuilt",
                   "TranscriptMalformedLines", "TranscriptsDropped", "ClinicalRecordSeconds",
                   "TranscriptionFailures"):  # fmt: skip
        assert metric in body, metric


def iam_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in synth.resources(kind).items():
            found += [(name, s) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    for name, role in synth.resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            found += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def test_no_iam_statement_has_a_wildcard_action(synth: Synth):
    statements = iam_statements(synth)
    assert statements
    for name, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (name, action)


# What a function's wiring (not its route) gives it: tracing, the database, its dead-letter queue and that
# queue's key. Everything else a role holds must come from its route's aws_actions through the IAM table.
WIRING = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "rds-db:connect", "secretsmanager:GetSecretValue",
          "secretsmanager:DescribeSecret", "sqs:SendMessage"}  # fmt: skip


def expected_resources(synth: Synth, on: On) -> set[str]:
    """The resources the IAM table's kinds stand for, as render() spells them."""
    if on is On.BEDROCK_MODEL:
        return BEDROCK_RESOURCES[synth.name]
    chime = "arn:<AWS::Partition>:chime:<AWS::Region>:<AWS::AccountId>"
    bucket = synth.logical_id("AWS::S3::Bucket", "RecordingsBucket")
    attachments = synth.logical_id("AWS::S3::Bucket", "AttachmentsBucket")
    return {
        On.ANY: {"*"},
        On.MEETING: {f"{chime}:meeting/*"},
        On.MEDIA_PIPELINE: {f"{chime}:media-pipeline/*"},
        On.SINK_ROLE: {f"<{synth.logical_id('AWS::IAM::Role', 'RecordingsPipelineSinkRole')}.Arn>"},
        On.RECORDINGS_BUCKET: {f"<{bucket}.Arn>"},
        On.RECORDINGS_OBJECTS: {f"<{bucket}.Arn>/recordings/*"},
        On.RECORDINGS_KEY: {f"<{synth.logical_id('AWS::KMS::Key', 'KeysRecordingsKey')}.Arn>"},
        On.ATTACHMENTS_BUCKET: {f"<{attachments}.Arn>"},
        On.ATTACHMENTS_OBJECTS: {f"<{attachments}.Arn>/attachments/*"},
        On.ATTACHMENTS_KEY: {f"<{synth.logical_id('AWS::KMS::Key', 'AttachmentsKey')}.Arn>"},
    }[on]


def test_each_function_may_call_only_its_own_aws_actions_on_their_own_resources(synth: Synth):
    """Every action a route lists, less those its configuration switches off, and nothing else."""
    data_key = f"<{synth.logical_id('AWS::KMS::Key', 'KeysDataKey')}.Arn>"
    statements = synth.role_statements()
    assert set(statements) == {*ALL_ROUTES, "migrate_database"}
    off = switched_off(synth.config)
    for name, found in statements.items():
        listed = set(ALL_ROUTES[name].aws_actions) - off if name in ALL_ROUTES else set()
        # `<action>@attachments` is the IAM action on the attachments bucket/key: one action, two kinds.
        expected: dict[str, set[str]] = {}
        # secretsmanager:GetSecretValue is wiring (the database secret) and, listed, the push secret's read:
        # tests/test_infra_notifications.py checks that one.
        for action in listed - WIRING:
            expected.setdefault(iam_action(action), set()).update(expected_resources(synth, RESOURCE_TYPES[action]))
        granted: dict[str, set[str]] = {}
        for statement in found:
            assert statement["Effect"] == "Allow", name
            resources = {render(r) for r in as_list(statement["Resource"])}
            for action in as_list(statement["Action"]):
                if action in WIRING or (action in ("kms:GenerateDataKey", "kms:Decrypt") and resources == {data_key}):
                    continue
                assert action in expected, f"{name} may call {action}, which its route does not list"
                granted.setdefault(action, set()).update(resources)
        assert granted == expected, name


def statements_with(synth: Synth, action: str) -> list[dict[str, Any]]:
    return [s for _, s in iam_statements(synth) if action in as_list(s["Action"])]


def test_create_meeting_is_granted_on_every_resource_never_on_a_meeting_arn(dev: Synth):
    """chime:CreateMeeting has no resource type: scoped to a meeting ARN, every create is AccessDenied."""
    granted = statements_with(dev, "chime:CreateMeeting")
    assert granted
    for statement in granted:
        assert as_list(statement["Resource"]) == ["*"], statement
    roles = dev.role_statements()
    for name, route in ALL_ROUTES.items():
        if "chime:CreateMeeting" in route.aws_actions:
            assert any("chime:CreateMeeting" in as_list(s["Action"]) and s["Resource"] == "*" for s in roles[name])


def test_media_pipeline_actions_are_granted_on_their_sar_resources_not_meetings(dev: Synth):
    """The creates have no resource type (the SAR lists neither meeting nor media-pipeline): "*". Delete and
    Get act on media-pipeline/*. None of them on meeting/* only."""
    expected = {
        "chime:CreateMediaCapturePipeline": {"*"},
        "chime:CreateMediaConcatenationPipeline": {"*"},
        "chime:DeleteMediaCapturePipeline": {
            "arn:<AWS::Partition>:chime:<AWS::Region>:<AWS::AccountId>:media-pipeline/*"
        },
        "chime:GetMediaPipeline": {"arn:<AWS::Partition>:chime:<AWS::Region>:<AWS::AccountId>:media-pipeline/*"},
    }
    for action, resources in expected.items():
        granted = statements_with(dev, action)
        assert granted, action
        for statement in granted:
            rendered = {render(r) for r in as_list(statement["Resource"])}
            assert rendered == resources, (action, rendered)
            assert not all(":meeting/" in r for r in rendered), action


def test_pass_role_passes_only_the_sink_role_only_to_media_pipelines(synth: Synth):
    sink_role = synth.logical_id("AWS::IAM::Role", "RecordingsPipelineSinkRole")
    granted = statements_with(synth, "iam:PassRole")
    assert granted
    for statement in granted:
        assert as_list(statement["Action"]) == ["iam:PassRole"]
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [sink_role, "Arn"]}]
        conditions = statement["Condition"]
        assert conditions["StringEquals"] == {"iam:PassedToService": MEDIA_PIPELINES}
        associated = render(conditions["ArnLike"]["iam:AssociatedResourceArn"])
        assert associated == "arn:<AWS::Partition>:chime:*:<AWS::AccountId>:media-pipeline/*"
    for action in ("iam:*", "iam:Pass*"):
        assert not statements_with(synth, action)


def test_an_action_missing_from_the_iam_table_fails_synth():
    # The functions never call Transcribe: Chime's service-linked role does. Not in the table, so it fails.
    with pytest.raises(UnknownAwsAction, match="transcribe:StartStreamTranscription"):
        check_actions(["chime:CreateMeeting", "transcribe:StartStreamTranscription"], who="some_route")
    with pytest.raises(UnknownAwsAction, match="s3:GetBucketPolicy"):
        check_actions(["chime:CreateMediaCapturePipeline", "iam:PassRole"], who="some_route")
    for route in ALL_ROUTES.values():
        check_actions(route.aws_actions, who=route.name)  # every route's actions are in the table


def test_iam5_suppressions_name_exactly_the_wildcard_resources_each_role_holds(synth: Synth):
    for name in synth.resources("AWS::IAM::Role"):
        wildcards = set()
        for policy in synth.resources("AWS::IAM::Policy").values():
            if {"Ref": name} in policy["Properties"]["Roles"]:
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    wildcards |= {f"Resource::{render(r)}" for r in as_list(statement["Resource"]) if "*" in render(r)}
        suppressed = [
            applies
            for policy in synth.resources("AWS::IAM::Policy").values() if {"Ref": name} in policy["Properties"]["Roles"]
            for s in policy.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            if s["id"] == "AwsSolutions-IAM5"
            for applies in s.get("applies_to", [])
        ]  # fmt: skip
        if suppressed:
            assert set(suppressed) == wildcards, name
            assert len(suppressed) == len(set(suppressed)), name  # one suppression, one reason per wildcard


def routes_listing(action: str) -> set[str]:
    return {name for name, route in ALL_ROUTES.items() if action in route.aws_actions}


def holders(synth: Synth, action: str) -> dict[str, set[str]]:
    """Route name -> the resources (rendered) its role may call `action` on."""
    found: dict[str, set[str]] = {}
    for name, statements in synth.role_statements().items():
        for statement in statements:
            if action in as_list(statement["Action"]):
                found.setdefault(name, set()).update(render(r) for r in as_list(statement["Resource"]))
    return found


def test_transcription_actions_are_granted_on_meetings_only(dev: Synth):
    """StartMeetingTranscription / StopMeetingTranscription act on a meeting (SAR resource type meeting)."""
    meetings = {"arn:<AWS::Partition>:chime:<AWS::Region>:<AWS::AccountId>:meeting/*"}
    assert RESOURCE_TYPES["chime:StartMeetingTranscription"] is On.MEETING
    assert RESOURCE_TYPES["chime:StopMeetingTranscription"] is On.MEETING
    for action in ("chime:StartMeetingTranscription", "chime:StopMeetingTranscription"):
        granted = holders(dev, action)
        assert set(granted) == routes_listing(action) and granted, action
        for name, resources in granted.items():
            assert resources == meetings, (action, name, resources)
    # The transcription runs as Chime's service-linked role: no function may call Transcribe itself.
    assert not [s for _, s in iam_statements(dev) if any(a.startswith("transcribe:") for a in as_list(s["Action"]))]


def test_comprehend_medical_is_granted_on_every_resource(synth: Synth):
    """Comprehend Medical has no resource type in the SAR: scoped to any ARN, every call is AccessDenied."""
    for action in ("comprehendmedical:DetectEntitiesV2", "comprehendmedical:InferICD10CM"):
        assert RESOURCE_TYPES[action] is On.ANY
        granted = holders(synth, action)
        expected = set() if action in switched_off(synth.config) else routes_listing(action)
        assert set(granted) == expected, (synth.name, action)
        for name, resources in granted.items():
            assert resources == {"*"}, (action, name, resources)
    assert holders(synth, "comprehendmedical:DetectEntitiesV2")  # the clinical record is always extracted
    assert "chime_pipeline_events" in holders(synth, "comprehendmedical:DetectEntitiesV2")
    assert "reconcile" in holders(synth, "comprehendmedical:DetectEntitiesV2")


def test_icd10_inference_off_grants_no_infer_icd10(prod: Synth):
    assert holders(prod, "comprehendmedical:InferICD10CM")
    assert not holders(synthesized("profile"), "comprehendmedical:InferICD10CM")


def test_bedrock_is_granted_only_on_the_configured_model_and_only_with_the_clinical_summary_on(synth: Synth):
    bedrock = [s for _, s in iam_statements(synth) if any(a.startswith("bedrock:") for a in as_list(s["Action"]))]
    expected = BEDROCK_RESOURCES[synth.name]
    if not synth.config.clinical_summary:
        assert expected == set() and bedrock == [], synth.name  # clinicalSummary off: no Bedrock at all
        assert "bedrock:InvokeModel" in switched_off(synth.config)
        return
    assert bedrock
    for statement in bedrock:
        assert as_list(statement["Action"]) == ["bedrock:InvokeModel"], statement
        assert "Condition" not in statement
        assert {render(r) for r in as_list(statement["Resource"])} == expected, statement
    granted = holders(synth, "bedrock:InvokeModel")
    assert set(granted) == routes_listing("bedrock:InvokeModel") == {"chime_pipeline_events", "reconcile"}
    for name, resources in granted.items():
        assert resources == expected, name
        assert not any(r.endswith("foundation-model/*") or r.endswith("inference-profile/*") for r in resources)


def test_functions_are_told_the_transcription_and_clinical_record_settings(synth: Synth):
    c = synth.config
    expected = {
        "TRANSCRIPTION_POLICY": c.transcription_policy,
        "TRANSCRIPTION_MEDICAL_REGION": CDK_CONTEXT["transcriptionRegion"],
        "TRANSCRIPTION_STANDARD_REGION": c.transcription_standard_region,
        "TRANSCRIPTION_SPECIALTY": c.transcription_specialty,
        "TRANSCRIPT_FOR_PATIENT": "false",
        "RETENTION_DAYS_TRANSCRIPTS": str(CDK_CONTEXT["transcriptRetentionDays"]),
        "COMPREHEND_MEDICAL_REGION": CDK_CONTEXT["comprehendMedicalRegion"],
        "ICD10_INFERENCE": "true" if c.icd10_inference else "false",
        "CLINICAL_SUMMARY": "true" if c.clinical_summary else "false",
        "BEDROCK_REGION": CDK_CONTEXT["bedrockRegion"],
        "BEDROCK_MODEL_ID": STAGES[synth.name].get("bedrockModelId", CDK_CONTEXT["bedrockModelId"]),
    }
    for name, function in synth.function_by_name().items():
        env = function["Properties"]["Environment"]["Variables"]
        assert {k: env.get(k) for k in expected} == expected, name
        assert "TRANSCRIPTION_REGION" not in env, name  # renamed: the settings read TRANSCRIPTION_MEDICAL_REGION


def test_inference_profile_ids_are_told_from_foundation_model_ids():
    assert inference_profile_geography(HAIKU) is None
    assert inference_profile_geography("amazon.nova-pro-v1:0") is None
    assert inference_profile_geography(f"eu.{HAIKU}") == "eu"
    assert inference_profile_geography(f"global.{HAIKU}") == "global"


def test_the_pipeline_events_function_has_time_for_the_clinical_record(synth: Synth):
    functions = synth.function_by_name()
    pipeline = functions["chime_pipeline_events"]["Properties"]
    assert pipeline["Timeout"] == 120 and pipeline["MemorySize"] == 512
    assert set(EVENT_ROUTE_SIZING) <= {r.name for r in EVENT_ROUTES}
    for route in EVENT_ROUTES:
        if route.name not in EVENT_ROUTE_SIZING:
            props = functions[route.name]["Properties"]
            assert props["Timeout"] == 30 and props["MemorySize"] == 256, route.name


def test_alarms_cover_transcription_failures_and_comprehend_medical_failing(dev: Synth):
    by_metric = alarms_by_metric(dev)
    service = {"Name": "service", "Value": "videocall"}
    (transcription,) = by_metric["TranscriptionFailures"]
    assert transcription["Dimensions"] == [service] and transcription["Namespace"] == "Telehealth/VideoCall"
    assert transcription["Threshold"] == 1 and transcription["Period"] == 300 and transcription["Statistic"] == "Sum"
    assert transcription["EvaluationPeriods"] == 1
    assert transcription["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "service-linked role" in transcription["AlarmDescription"]
    cause = {"Name": "cause", "Value": "medical_extraction"}
    (medical,) = [a for a in by_metric["Failures"] if cause in a["Dimensions"]]
    assert service in medical["Dimensions"] and medical["Statistic"] == "Sum"
    assert medical["Threshold"] == 3 and medical["Period"] * medical["EvaluationPeriods"] == 900
    assert medical["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "eu-west-1" in medical["AlarmDescription"] and "reconciler" in medical["AlarmDescription"]


def test_functions_may_reach_services_over_the_nat(dev: Synth):
    """Comprehend Medical (eu-west-1) and Bedrock have no interface endpoint here: HTTPS over the NAT, which an
    egress rule limiting 443 to given destinations would break."""
    (sg,) = [g["Properties"] for g in dev.resources("AWS::EC2::SecurityGroup").values()
             if g["Properties"]["GroupDescription"] == "Video-call Lambda functions"]  # fmt: skip
    assert {"CidrIp": "0.0.0.0/0", "Description": "Allow all outbound traffic by default", "IpProtocol": "-1"} in sg[
        "SecurityGroupEgress"
    ]
    assert dev.resources("AWS::EC2::NatGateway")
    services = json.dumps([e["Properties"]["ServiceName"] for e in dev.resources("AWS::EC2::VPCEndpoint").values()])
    assert "comprehendmedical" not in services and "bedrock" not in services


def test_waf_is_on_in_prod_with_managed_rules_and_redacted_token_logs(prod: Synth, dev: Synth):
    assert dev.resources("AWS::WAFv2::WebACL") == {}
    (acl,) = prod.resources("AWS::WAFv2::WebACL").values()
    names = {r["Name"] for r in acl["Properties"]["Rules"]}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "BodyOver64KB"} <= names
    assert len(prod.resources("AWS::WAFv2::WebACLAssociation")) == 1
    (logging,) = prod.resources("AWS::WAFv2::LoggingConfiguration").values()
    redacted = json.dumps(logging["Properties"]["RedactedFields"]).lower()
    assert "x-firebase-token" in redacted and "authorization" in redacted


def test_api_stage_throttles_traces_and_logs_without_bodies(dev: Synth):
    (stage,) = dev.resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "AccessLogSetting" in props
    setting = props["MethodSettings"][0]
    assert setting["ThrottlingRateLimit"] == CDK_CONTEXT["apiRateLimit"] and setting["DataTraceEnabled"] is False
    assert "header" not in props["AccessLogSetting"]["Format"].lower()


def test_interface_endpoints_for_chime_and_secrets(dev: Synth):
    services = json.dumps([e["Properties"]["ServiceName"] for e in dev.resources("AWS::EC2::VPCEndpoint").values()])
    for name in ("meetings-chime", "media-pipelines-chime", "secretsmanager"):
        assert name in services


def test_migrations_run_on_deploy_through_a_trigger(dev: Synth):
    triggers = dev.resources("Custom::Trigger")
    assert len(triggers) == 1
    (trigger,) = triggers.values()
    assert trigger["Properties"]["InvocationType"] == "RequestResponse"
    # The app's functions get their new code only after the migrations ran (never new code, old schema).
    (trigger_id,) = triggers
    for name, function in dev.functions().items():
        if "migratedatabase" in name.lower() or "MigrationsFunction" in name:
            continue
        assert trigger_id in function.get("DependsOn", []), name


# --- regions and configuration --------------------------------------------------------------------------
def test_every_default_region_is_in_the_eu():
    defaults = StageConfig()
    for value in (defaults.region, defaults.transcription_region, defaults.transcription_standard_region,
                  defaults.comprehend_medical_region, defaults.bedrock_region,
                  CDK_CONTEXT["region"], CDK_CONTEXT["transcriptionRegion"], CDK_CONTEXT["transcriptionStandardRegion"],
                  CDK_CONTEXT["comprehendMedicalRegion"], CDK_CONTEXT["bedrockRegion"]):  # fmt: skip
        assert value in EU_REGIONS


def test_functions_are_told_eu_regions(dev: Synth):
    for function in dev.functions().values():
        env = function["Properties"]["Environment"]["Variables"]
        for key in ("CHIME_CONTROL_REGION", "CHIME_MEDIA_REGION", "TRANSCRIPTION_MEDICAL_REGION",
                    "TRANSCRIPTION_STANDARD_REGION", "COMPREHEND_MEDICAL_REGION", "BEDROCK_REGION"):  # fmt: skip
            assert env[key] in EU_REGIONS, key


@pytest.mark.parametrize(
    "key", ["region", "transcriptionRegion", "transcriptionStandardRegion", "comprehendMedicalRegion", "bedrockRegion"]
)
def test_a_region_outside_the_eu_is_refused(key: str):
    with pytest.raises(ConfigError, match="outside the EU"):
        StageConfig.from_context(App(context={**CDK_CONTEXT, key: "us-east-1"}).node)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("consentSource", "clinic", "consentSource"),
        ("recordingLinkSeconds", 30, "recordingLinkSeconds"),
        ("emptyMeetingGraceSeconds", 10, "emptyMeetingGraceSeconds"),
    ],
)
def test_recording_settings_out_of_bounds_are_refused_at_synth(key: str, value: Any, message: str):
    with pytest.raises(ConfigError, match=message):
        StageConfig.from_context(App(context={**CDK_CONTEXT, key: value}).node)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("transcriptionRegion", "eu-west-2", "Transcribe Medical"),
        ("transcriptionPolicy", "medical-all", "transcriptionPolicy"),
        ("transcriptionSpecialty", "DERMATOLOGY", "transcriptionSpecialty"),
        ("transcriptRetentionDays", 0, "transcriptRetentionDays"),
        ("bedrockModelId", "", "bedrockModelId"),
        ("bedrockModelId", f"us.{HAIKU}", "outside the EU"),
        ("bedrockModelId", f"global.{HAIKU}", "outside the EU"),
        ("bedrockModelId", f"apac.{HAIKU}", "outside the EU"),
    ],
)
def test_transcription_and_clinical_record_settings_out_of_bounds_are_refused_at_synth(
    key: str, value: Any, message: str
):
    with pytest.raises(ConfigError, match=message):
        StageConfig.from_context(App(context={**CDK_CONTEXT, key: value}).node)


def test_external_mode_needs_its_secret():
    with pytest.raises(ConfigError, match="externalDatabaseSecretArn"):
        StageConfig.from_context(App(context={**CDK_CONTEXT, "databaseMode": "external"}).node)


# --- synth from the command line, and the real bundle -------------------------------------------------------
def test_synth_from_the_command_line_needs_no_aws_credentials(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {"CDK_OUTDIR": str(tmp_path), "CDK_CONTEXT_JSON": json.dumps({**CDK_CONTEXT, "aws:cdk:bundling-stacks": []})}
    )
    result = subprocess.run([sys.executable, "infra/app.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    template = json.loads((tmp_path / "VideoCall-dev.template.json").read_text())
    assert "AWS::ApiGateway::RestApi" in json.dumps(template)


def test_real_bundle_is_aarch64_and_under_lambdas_limit(tmp_path: Path):
    """Downloads the runtime wheels for Lambda (PyPI, or VIDEOCALL_WHEELHOUSE): about 100 MB."""
    build_bundle(tmp_path)
    size = bundle_size(tmp_path)
    assert size < UNZIPPED_LIMIT_BYTES, f"{size / 1e6:.0f} MB"
    for required in ("handlers/create_meeting.py", "videocall/meetings/service.py", "migrations", "firebase_admin",
                     "psycopg", "aws_lambda_powertools", "pydantic_core"):  # fmt: skip
        assert (tmp_path / required).exists(), required
    assert not (tmp_path / "videocall" / "local").exists(), "local stand-ins must not ship"
    binaries = [p.name for p in tmp_path.rglob("*.so")]
    assert binaries and not any("x86_64" in b for b in binaries)
    assert any("cpython-313-aarch64" in b for b in binaries)
    if lambda_interpreter() is not None:  # (without one the build warns: see the next test)
        # Bytecode for Lambda's Python, our code and the dependencies alike: /var/task is read-only.
        for pyc in (
            "videocall/meetings/__pycache__/service.cpython-313.pyc",
            "botocore/__pycache__/client.cpython-313.pyc",
            "psycopg/__pycache__/connection.cpython-313.pyc",
        ):
            data = (tmp_path / pyc).read_bytes()
            assert int.from_bytes(data[4:8], "little") == 0b01, pyc  # hash-based, the source never re-checked
        assert not list(tmp_path.rglob("*.cpython-311.pyc")) and not list(tmp_path.rglob("*.cpython-312.pyc"))


def test_without_lambdas_python_the_bundle_says_what_it_costs(tmp_path: Path, monkeypatch, capsys):
    from infra import bundling

    monkeypatch.setattr(bundling, "lambda_interpreter", lambda: None)
    (tmp_path / "m.py").write_text("x = 1\n")
    assert bundling.compile_bytecode(tmp_path) is False
    assert "without bytecode" in capsys.readouterr().err and not list(tmp_path.rglob("*.pyc"))


def test_a_wrong_lambda_python_is_refused(monkeypatch):
    from infra import bundling

    monkeypatch.setenv("VIDEOCALL_LAMBDA_PYTHON", sys.executable)  # this venv's 3.11, not Lambda's 3.13
    with pytest.raises(RuntimeError, match=r"is not a Python 3\.13"):
        bundling.lambda_interpreter()
