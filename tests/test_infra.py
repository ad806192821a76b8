"""The CDK app: cdk-nag AwsSolutions + HIPAA.Security with no unsuppressed finding, and the properties ops
and auditors rely on, asserted on the synthesized templates (bundling skipped; one test bundles for real)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App
from aws_cdk.assertions import Annotations, Match, Template
from videocall.routes import EVENT_ROUTES, ROUTES

from infra.app import build
from infra.bundling import UNZIPPED_LIMIT_BYTES, build_bundle, bundle_size
from infra.config import EU_REGIONS, ConfigError, StageConfig

ROOT = Path(__file__).resolve().parents[1]
CDK_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
EXTERNAL_SECRET = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:videocall/db-AbCdEf"
STAGES = {
    "dev": {},
    "prod": {"stage": "prod", "alarmEmails": ["oncall@example.org"]},
    "external": {"stage": "staging", "databaseMode": "external", "externalDatabaseSecretArn": EXTERNAL_SECRET},
}


class Synth:
    def __init__(self, overrides: dict[str, Any]) -> None:
        app = App(context={**CDK_CONTEXT, "aws:cdk:bundling-stacks": [], **overrides})
        self.stack = build(app)
        self.template = Template.from_stack(self.stack)
        self.json = self.template.to_json()
        self.annotations = Annotations.from_stack(self.stack)

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.template.find_resources(kind)

    def functions(self) -> dict[str, dict[str, Any]]:
        """Our functions (CDK's own custom-resource providers are Node.js and not ours)."""
        return {k: v for k, v in self.resources("AWS::Lambda::Function").items()
                if str(v["Properties"].get("Runtime", "")).startswith("python")}  # fmt: skip


@pytest.fixture(scope="module", params=list(STAGES))
def synth(request: pytest.FixtureRequest) -> Synth:
    return Synth(STAGES[request.param])


@pytest.fixture(scope="module")
def dev() -> Synth:
    return Synth(STAGES["dev"])


@pytest.fixture(scope="module")
def prod() -> Synth:
    return Synth(STAGES["prod"])


def test_nag_packs_report_nothing_unsuppressed(synth: Synth):
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


def test_one_function_per_route_and_per_event_route(synth: Synth):
    handlers = sorted(f["Properties"]["Handler"] for f in synth.functions().values())
    expected = sorted([r.handler for r in ROUTES] + [r.handler for r in EVENT_ROUTES]
                      + ["handlers.migrate_database.handler"])  # fmt: skip
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


def test_keys_rotate(synth: Synth):
    keys = synth.resources("AWS::KMS::Key")
    assert len(keys) == 2 and all(k["Properties"]["EnableKeyRotation"] for k in keys.values())


def test_recordings_bucket_is_kms_encrypted_private_and_writable_only_by_chime(dev: Synth):
    buckets = dev.resources("AWS::S3::Bucket")
    recordings = next(b for b in buckets.values() if "LoggingConfiguration" in b["Properties"])
    props = recordings["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "KMSMasterKeyID" in rule["ServerSideEncryptionByDefault"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == CDK_CONTEXT["recordingRetentionDays"]

    policies = [p["Properties"]["PolicyDocument"]["Statement"] for p in dev.resources("AWS::S3::BucketPolicy").values()]
    statements = [s for policy in policies for s in policy]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    allows = [s for s in statements if s["Effect"] == "Allow"]
    chime = [s for s in allows if s["Principal"] == {"Service": "mediapipelines.chime.amazonaws.com"}]
    assert len(chime) == 1
    assert sorted(chime[0]["Action"]) == ["s3:PutObject", "s3:PutObjectAcl"]
    assert set(chime[0]["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in chime[0]["Condition"]["StringEquals"]
    assert "aws:SourceArn" in chime[0]["Condition"]["ArnLike"]
    # Nothing public: every other Allow is the S3 log-delivery service for the access-log bucket.
    for statement in allows:
        assert statement["Principal"] != "*" and statement["Principal"] != {"AWS": "*"}


def test_recordings_key_lets_chime_encrypt_for_this_account_only(dev: Synth):
    key_statements = [s for k in dev.resources("AWS::KMS::Key").values()
                      for s in k["Properties"]["KeyPolicy"]["Statement"]]  # fmt: skip
    chime = [s for s in key_statements if s.get("Principal") == {"Service": "mediapipelines.chime.amazonaws.com"}]
    assert len(chime) == 1 and sorted(chime[0]["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert "aws:SourceAccount" in chime[0]["Condition"]["StringEquals"]


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
    external = Synth(STAGES["external"])
    assert external.resources("AWS::RDS::DBCluster") == {}
    for function in external.functions().values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["DB_AUTH"] == "secret" and env["DB_SECRET_ARN"] == EXTERNAL_SECRET


def test_chime_event_rules_have_retries_and_encrypted_dead_letter_queues(synth: Synth):
    rules = synth.resources("AWS::Events::Rule")
    assert len(rules) == len(EVENT_ROUTES)
    for rule in rules.values():
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["source"] == ["aws.chime"]
        assert pattern["detail-type"][0] in {r.detail_type for r in EVENT_ROUTES}
        (target,) = rule["Properties"]["Targets"]
        assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    for queue in synth.resources("AWS::SQS::Queue").values():
        assert "KmsMasterKeyId" in queue["Properties"]


def test_alarms_cover_5xx_errors_throttles_dlq_and_database(dev: Synth):
    alarms = dev.resources("AWS::CloudWatch::Alarm")
    descriptions = " ".join(a["Properties"]["AlarmDescription"] for a in alarms.values())
    assert "5xx" in descriptions and "DLQ" in descriptions and "Database CPU" in descriptions
    for function_name in [r.name for r in ROUTES]:
        assert f"{function_name}: invocations failed" in descriptions
        assert f"{function_name}: throttled" in descriptions
    (topic_ref,) = {json.dumps(a["Properties"]["AlarmActions"]) for a in alarms.values()}
    assert "Alarms" in topic_ref
    (topic,) = dev.resources("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]


def test_alarm_emails_subscribe_to_the_topic(prod: Synth):
    subscriptions = prod.resources("AWS::SNS::Subscription")
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == ["oncall@example.org"]


def test_dashboard_shows_api_functions_database_and_business_metrics(dev: Synth):
    (dashboard,) = dev.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in ("5XXError", "4XXError", "Latency", "p99", "Throttles", "ConcurrentExecutions", "Duration",
                   "DatabaseConnections", "CPUUtilization", "MeetingsCreated", "MeetingsEnded", "Joins",
                   "JoinLatency", "Failures"):  # fmt: skip
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


def test_each_function_may_call_only_its_own_aws_actions(dev: Synth):
    by_role: dict[str, set[str]] = {}
    for name, statement in iam_statements(dev):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        by_role.setdefault(name, set()).update(a for a in actions if a.startswith("chime:"))
    for route in [*ROUTES]:
        policy = next(n for n in by_role if n.startswith(f"Functions{route.name.replace('_', '')}Role")
                      or n.startswith(f"Functions{route.name}Role"))  # fmt: skip
        assert by_role[policy] == set(route.aws_actions), route.name
    assert not any(a for n, a in by_role.items() if "migrate" in n or "events" in n)


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


# --- regions and configuration --------------------------------------------------------------------------
def test_every_default_region_is_in_the_eu():
    defaults = StageConfig()
    for value in (defaults.region, defaults.transcription_region, defaults.comprehend_medical_region,
                  CDK_CONTEXT["region"], CDK_CONTEXT["transcriptionRegion"], CDK_CONTEXT["comprehendMedicalRegion"]):  # fmt: skip
        assert value in EU_REGIONS


def test_functions_are_told_eu_regions(dev: Synth):
    for function in dev.functions().values():
        env = function["Properties"]["Environment"]["Variables"]
        for key in ("CHIME_CONTROL_REGION", "CHIME_MEDIA_REGION", "TRANSCRIPTION_REGION", "COMPREHEND_MEDICAL_REGION"):
            assert env[key] in EU_REGIONS, key


@pytest.mark.parametrize("key", ["region", "transcriptionRegion", "comprehendMedicalRegion"])
def test_a_region_outside_the_eu_is_refused(key: str):
    with pytest.raises(ConfigError, match="outside the EU"):
        StageConfig.from_context(App(context={**CDK_CONTEXT, key: "us-east-1"}).node)


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
