"""The CDK side of push notifications: the FCM credential's secret (encrypted with the data key, rotation
suppressed with its reason), readable only by the functions that send pushes (their routes list
secretsmanager:GetSecretValue), with kms:Decrypt through Secrets Manager only, and only they are told
where it is.

The stack has outgrown CloudFormation's 500 resources per stack (every context's functions, alarms and API
methods together); until it is split, these templates are synthesized with CDK's resource-count check off
(`@aws-cdk/core:stackResourceLimit` 0), which changes nothing else in them."""

from __future__ import annotations

from typing import Any

import pytest
from test_infra import ALL_ROUTES, STAGES, Synth, as_list, render

from infra.config import ConfigError, StageConfig

GET_SECRET = "secretsmanager:GetSecretValue"
IMPORTED = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:videocall/push-AbCdEf"
NO_LIMIT = {"@aws-cdk/core:stackResourceLimit": 0}
_SYNTHS: dict[str, Synth] = {}


def synthesized(stage: str) -> Synth:
    if stage not in _SYNTHS:
        overrides = (
            {"stage": "pushimport", "pushCredentialsSecretArn": IMPORTED} if stage == "imported" else STAGES[stage]
        )
        _SYNTHS[stage] = Synth(stage, {**overrides, **NO_LIMIT})
    return _SYNTHS[stage]


def senders() -> set[str]:
    return {name for name, route in ALL_ROUTES.items() if GET_SECRET in route.aws_actions}


def push_secret_id(synth: Synth) -> str:
    (found,) = [k for k in synth.resources("AWS::SecretsManager::Secret") if k.startswith("PushCredentials")]
    return found


def statements_on(synth: Synth, name: str, resource: str) -> list[dict[str, Any]]:
    return [s for s in synth.role_statements()[name] if resource in {render(r) for r in as_list(s["Resource"])}]


@pytest.fixture(scope="module")
def imported() -> Synth:
    return synthesized("imported")


def test_the_meeting_events_function_sends_pushes():
    assert "chime_meeting_events" in senders()


def test_the_push_secret_is_encrypted_with_the_data_key_and_waits_for_ops_to_fill_it():
    dev = synthesized("dev")
    secret = dev.resources("AWS::SecretsManager::Secret")[push_secret_id(dev)]["Properties"]
    assert secret["KmsKeyId"] == {"Fn::GetAtt": [dev.logical_id("AWS::KMS::Key", "KeysDataKey"), "Arn"]}
    assert "SecretString" not in secret  # no credential in the template: a placeholder generated once
    assert secret["GenerateSecretString"]["SecretStringTemplate"] == '{"type": "placeholder"}'
    outputs = dev.template.find_outputs("PushCredentialsSecretArn")
    assert next(iter(outputs.values()))["Value"] == {"Ref": push_secret_id(dev)}


def test_rotation_findings_are_suppressed_with_the_reason():
    dev = synthesized("dev")
    metadata = dev.resources("AWS::SecretsManager::Secret")[push_secret_id(dev)]["Metadata"]["cdk_nag"]
    reasons = {s["id"]: s["reason"] for s in metadata["rules_to_suppress"]}
    assert set(reasons) == {"AwsSolutions-SMG4", "HIPAA.Security-SecretsManagerRotationEnabled"}
    assert all("service-account key" in reason for reason in reasons.values())


@pytest.mark.parametrize("stage", ["dev", "external"])
def test_only_the_functions_that_send_may_read_the_secret_and_decrypt_it_through_secrets_manager(stage: str):
    synth = synthesized(stage)
    secret = f"<{push_secret_id(synth)}>"
    data_key = f"<{synth.logical_id('AWS::KMS::Key', 'KeysDataKey')}.Arn>"
    for name in synth.role_statements():
        on_secret = statements_on(synth, name, secret)
        decrypt = [s for s in statements_on(synth, name, data_key)
                   if "secretsmanager" in str(s.get("Condition", {}))]  # fmt: skip
        if name in senders():
            assert [as_list(s["Action"]) for s in on_secret] == [[GET_SECRET]], name
            assert [as_list(s["Resource"]) for s in on_secret] == [[{"Ref": push_secret_id(synth)}]], name
            (statement,) = decrypt
            assert as_list(statement["Action"]) == ["kms:Decrypt"]
            assert render(statement["Condition"]["StringEquals"]["kms:ViaService"]) == (
                "secretsmanager.<AWS::Region>.amazonaws.com")  # fmt: skip
        else:
            assert on_secret == [] and decrypt == [], name


def test_only_the_functions_that_send_are_told_where_the_secret_is():
    dev = synthesized("dev")
    for name, function in dev.function_by_name().items():
        env = function["Properties"]["Environment"]["Variables"]
        if name in senders():
            assert env["PUSH_CREDENTIALS_SECRET_ARN"] == {"Ref": push_secret_id(dev)}, name
        else:
            assert "PUSH_CREDENTIALS_SECRET_ARN" not in env, name


def test_an_existing_secret_is_imported_by_arn(imported: Synth):
    assert not [k for k in imported.resources("AWS::SecretsManager::Secret") if k.startswith("PushCredentials")]
    for name, function in imported.function_by_name().items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env.get("PUSH_CREDENTIALS_SECRET_ARN") == (IMPORTED if name in senders() else None), name
        granted = [s for s in imported.role_statements()[name] if GET_SECRET in as_list(s["Action"])]
        assert [as_list(s["Resource"]) for s in granted] == ([[IMPORTED]] if name in senders() else []), name


def test_an_imported_secret_must_be_an_arn():
    with pytest.raises(ConfigError, match="pushCredentialsSecretArn"):
        StageConfig(firebase_project_id="p", push_credentials_secret_arn="videocall/push").check()


@pytest.mark.parametrize("stage", ["dev", "imported"])
def test_nag_packs_report_nothing_unsuppressed_with_the_push_secret(stage: str):
    from aws_cdk.assertions import Match

    synth = synthesized(stage)
    for finder in (synth.annotations.find_error, synth.annotations.find_warning):
        findings = finder("*", Match.string_like_regexp("(AwsSolutions|HIPAA\\.Security|CdkNag).*"))
        assert findings == [], "\n".join(f"{f.id}: {str(f.entry.data)[:160]}" for f in findings)
