"""Customer-managed KMS keys, rotated yearly: one for data at rest (database, secrets, logs, queues,
topics), one for recordings (so access to recordings can be granted and audited on its own)."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def customer_key(scope: Construct, id: str, *, name: str, description: str, removal: RemovalPolicy) -> kms.Key:
    """A customer-managed key, rotated yearly, 30 days' pending window, aliased by stack and purpose."""
    return kms.Key(
        scope,
        id,
        alias=f"alias/{Stack.of(scope).stack_name}/{name}",
        enable_key_rotation=True,
        description=description,
        removal_policy=removal,
        pending_window=Duration.days(30),
    )


class EncryptionKeys(Construct):
    def __init__(self, scope: Construct, id: str, *, prod: bool) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY
        self.data = customer_key(
            self, "DataKey", name="data", removal=removal,
            description="Video-call data at rest: database, secrets, logs, queues, topics",
        )  # fmt: skip
        self.recordings = customer_key(
            self, "RecordingsKey", name="recordings", removal=removal,
            description="Meeting recordings and transcripts written by Chime media pipelines",
        )  # fmt: skip
        # CloudWatch Logs encrypts log groups with this key, only for this account's log groups.
        self.data.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"}
                },
            )
        )
        # CloudWatch alarms publish to the encrypted SNS topic; EventBridge writes to encrypted DLQs.
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.data.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )
