"""The chat's attachments: a bucket and a customer-managed KMS key of their own (never the recordings
bucket), and GuardDuty Malware Protection for S3 scanning every new object.

- The bucket: SSE-KMS under its own key (rotated), bucket keys, public access blocked, TLS enforced,
  versioned, server access logs (into the recordings access-log bucket, under `attachments/`), objects
  owned by the bucket owner. Uploads come only through the presigned POSTs the functions sign (their
  policy pins key, type, size and the SSE-KMS fields), downloads only through presigned GETs.
- Retention: the app's job deletes chat attachments past `chatRetentionDays`, every version, except
  under a legal hold; the lifecycle rule is the backstop 7 days later (noncurrent versions after a day,
  incomplete uploads after a day).
- GuardDuty (`AWS::GuardDuty::MalwareProtectionPlan`): scans each new object and tags it
  `GuardDutyMalwareScanStatus` (NO_THREATS_FOUND, THREATS_FOUND, UNSUPPORTED, ACCESS_DENIED, FAILED).
  The functions hand out a link only for NO_THREATS_FOUND (ATTACHMENT_SCAN_REQUIRED is on in every
  deployed stage). The plan's role has exactly the permissions of the GuardDuty user guide's "Create or
  update IAM role policy" page (the managed EventBridge rule, the post-scan tags, the bucket's
  EventBridge notification, the validation object, ownership check, reading objects, the key through S3),
  scoped to this bucket and key; the plan depends on the role's policy (the guide asks IaC deployments
  to, for eventual consistency).
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_guardduty as guardduty
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.buckets import encrypted_bucket, retention_backstop
from infra.components.iam import ATTACHMENTS_PREFIX, AttachmentsResources, logical_id
from infra.components.keys import customer_key

GUARDDUTY_MALWARE = "malware-protection-plan.guardduty.amazonaws.com"
MANAGED_RULE = "DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*"


class AttachmentsBucket(Construct):
    def __init__(self, scope: Construct, id: str, *, retention_days: int, access_logs: s3.IBucket, prod: bool) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY
        self.key = customer_key(
            self, "Key", name="attachments", removal=removal,
            description="Files patients and clinicians attach to in-call chat messages",
        )  # fmt: skip
        self.bucket = encrypted_bucket(
            self, "Bucket", key=self.key, access_logs=access_logs, logs_prefix="attachments/",
            lifecycle=retention_backstop(retention_days), removal=removal,
        )  # fmt: skip
        self.resources = AttachmentsResources(bucket=self.bucket, key=self.key)
        self.environment = {
            "ATTACHMENTS_BUCKET": self.bucket.bucket_name,
            "ATTACHMENTS_KMS_KEY_ARN": self.key.key_arn,
            "ATTACHMENT_SCAN_REQUIRED": "true",
            "RETENTION_DAYS_CHAT": str(retention_days),
        }
        self._malware_protection()
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="HIPAA.Security-S3BucketReplicationEnabled",
                    reason="Attachments bucket: kept in one region by design (GDPR data residency, one KMS key); "
                    "durability comes from S3 and versioning, retention from the app's job and the lifecycle rule",
                )
            ],
        )

    def _malware_protection(self) -> None:
        region, account, partition = Aws.REGION, Aws.ACCOUNT_ID, Aws.PARTITION
        rules = f"arn:{partition}:events:{region}:{account}:rule/{MANAGED_RULE}"
        self.scan_role = iam.Role(
            self,
            "MalwareProtectionRole",
            assumed_by=iam.ServicePrincipal(GUARDDUTY_MALWARE),
            description="GuardDuty Malware Protection for S3: scans and tags new objects of the attachments bucket",
        )
        statements = [
            iam.PolicyStatement(
                sid="AllowManagedRuleToSendS3EventsToGuardDuty",
                actions=["events:PutRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets"],
                resources=[rules],
                conditions={"StringLike": {"events:ManagedBy": GUARDDUTY_MALWARE}},
            ),
            iam.PolicyStatement(
                sid="AllowGuardDutyToMonitorEventBridgeManagedRule",
                actions=["events:DescribeRule", "events:ListTargetsByRule"],
                resources=[rules],
            ),
            iam.PolicyStatement(
                sid="AllowPostScanTag",
                actions=[
                    "s3:PutObjectTagging",
                    "s3:GetObjectTagging",
                    "s3:PutObjectVersionTagging",
                    "s3:GetObjectVersionTagging",
                ],
                resources=[self.bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="AllowEnableS3EventBridgeEvents",
                actions=["s3:PutBucketNotification", "s3:GetBucketNotification"],
                resources=[self.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="AllowPutValidationObject",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("malware-protection-resource-validation-object")],
            ),
            iam.PolicyStatement(
                sid="AllowCheckBucketOwnership", actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="AllowMalwareScan",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="AllowDecryptForMalwareScan",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[self.key.key_arn],
                conditions={"StringLike": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        ]
        policy = iam.Policy(self, "MalwareProtectionPolicy", statements=statements, roles=[self.scan_role])
        self.plan = guardduty.CfnMalwareProtectionPlan(
            self,
            "MalwareProtectionPlan",
            role=self.scan_role.role_arn,
            protected_resource=guardduty.CfnMalwareProtectionPlan.CFNProtectedResourceProperty(
                s3_bucket=guardduty.CfnMalwareProtectionPlan.S3BucketProperty(
                    bucket_name=self.bucket.bucket_name, object_prefixes=[ATTACHMENTS_PREFIX]
                )
            ),
            # Tag each scanned object with its verdict: the functions read the tag before handing out a link.
            actions=guardduty.CfnMalwareProtectionPlan.CFNActionsProperty(
                tagging=guardduty.CfnMalwareProtectionPlan.CFNTaggingProperty(status="ENABLED")
            ),
        )
        self.plan.node.add_dependency(policy)
        bucket_objects = f"Resource::<{logical_id(self.bucket)}.Arn>/*"
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="MalwareProtectionRole: GuardDuty scans and tags every new object of the attachments bucket "
                    "(keys made at run time), as the GuardDuty user guide's role policy requires",
                    applies_to=[bucket_objects],
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="MalwareProtectionRole: the EventBridge managed rule GuardDuty creates has a generated "
                    "suffix; the pattern is its documented name prefix in this account and region only",
                    applies_to=[
                        f"Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:rule/{MANAGED_RULE}"
                    ],
                ),
                NagPackSuppression(
                    id="HIPAA.Security-IAMNoInlinePolicy",
                    reason="MalwareProtectionRole: the policy is this role's own grants on the attachments bucket "
                    "and key only; a shared managed policy would widen them",
                ),
            ],
        )
