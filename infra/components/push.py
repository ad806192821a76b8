"""The credential push notifications are sent with: the Firebase service-account JSON (a key of a
service account allowed to send through FCM), in Secrets Manager, encrypted with the stack's data key.

The stack creates the secret with a placeholder (a random value in a JSON the sender refuses), and ops
put the real JSON in once (README "Notifications"):
    aws secretsmanager put-secret-value --secret-id <PushCredentialsSecretArn> --secret-string file://sa.json
Or the stack imports an existing secret by ARN (context `pushCredentialsSecretArn`); it must be encrypted
with the stack's data key or Secrets Manager's AWS-managed key.

Only the functions whose route lists secretsmanager:GetSecretValue (videocall.core.routing.NOTIFY) may
read it, with kms:Decrypt through Secrets Manager only (infra/components/iam.py), and only they are told
its ARN (PUSH_CREDENTIALS_SECRET_ARN, infra/components/functions.py).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.iam import PushResources

ROTATION_REASON = (
    "the secret holds a Firebase service-account key that Google issues: a Secrets Manager rotation Lambda "
    "cannot mint one (it would need IAM admin rights in the Firebase project). Ops rotate it in Google Cloud "
    "(create a new key, put-secret-value, delete the old key); execution environments load it once, so new "
    "ones pick it up within their lifetime"
)


class PushCredentials(Construct):
    def __init__(
        self, scope: Construct, id: str, *, key: kms.IKey, prod: bool, imported_arn: str | None = None
    ) -> None:
        super().__init__(scope, id)
        self.secret: secretsmanager.ISecret
        if imported_arn:
            self.secret = secretsmanager.Secret.from_secret_complete_arn(self, "Imported", imported_arn)
        else:
            secret = secretsmanager.Secret(
                self,
                "Secret",
                description="Firebase service-account JSON for sending push notifications (FCM); put the real "
                "JSON with put-secret-value",
                encryption_key=key,
                # A placeholder the sender refuses (not a service account) until ops put the real JSON.
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template='{"type": "placeholder"}',  # noqa: S106 - no credential: a placeholder
                    generate_string_key="placeholder",
                ),
                removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
            )
            NagSuppressions.add_resource_suppressions(
                secret,
                [
                    NagPackSuppression(id="AwsSolutions-SMG4", reason=f"push credentials: {ROTATION_REASON}"),
                    NagPackSuppression(
                        id="HIPAA.Security-SecretsManagerRotationEnabled", reason=f"push credentials: {ROTATION_REASON}"
                    ),
                ],
            )
            self.secret = secret
        self.resources = PushResources(secret=self.secret, key=key)
