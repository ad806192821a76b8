"""The database, chosen by context `databaseMode`:

- `aurora`: Aurora PostgreSQL Serverless v2 in isolated subnets, encrypted with the data key,
  backups (35 days in prod), deletion protection in prod, logs exported, enhanced monitoring,
  behind an RDS Proxy that requires TLS and IAM authentication. Functions connect to the proxy with
  an IAM token (no password in the function at all).
- `external`: an existing PostgreSQL (the current Supabase database, say) whose connection secret is
  already in Secrets Manager; functions read it through Powertools Parameters (cached).

Either way the construct tells functions how to connect (`environment`) and grants them that
(`grant_connect`), so the rest of the app does not care which one it is.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

DB_NAME = "videocall"
DB_ADMIN = "videocall_admin"


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        mode: str,
        vpc: ec2.IVpc,
        function_sg: ec2.ISecurityGroup,
        key: kms.IKey,
        prod: bool,
        external_secret_arn: str | None,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.mode = mode
        self.cluster: rds.DatabaseCluster | None = None
        self.proxy: rds.DatabaseProxy | None = None
        self.secret: secretsmanager.ISecret
        if mode == "aurora":
            self._aurora(vpc, function_sg, key, prod, log_retention)
        else:
            assert external_secret_arn
            self.secret = secretsmanager.Secret.from_secret_complete_arn(self, "ExternalSecret", external_secret_arn)
            self.environment = {"DB_AUTH": "secret", "DB_SECRET_ARN": external_secret_arn}

    def _aurora(
        self,
        vpc: ec2.IVpc,
        function_sg: ec2.ISecurityGroup,
        key: kms.IKey,
        prod: bool,
        log_retention: logs.RetentionDays,
    ) -> None:
        db_sg = ec2.SecurityGroup(self, "DbSg", vpc=vpc, description="Aurora cluster", allow_all_outbound=False)
        proxy_sg = ec2.SecurityGroup(self, "ProxySg", vpc=vpc, description="RDS Proxy", allow_all_outbound=False)
        proxy_sg.add_ingress_rule(function_sg, ec2.Port.tcp(5432), "PostgreSQL from the functions")
        db_sg.add_ingress_rule(proxy_sg, ec2.Port.tcp(5432), "PostgreSQL from the proxy")
        proxy_sg.add_egress_rule(db_sg, ec2.Port.tcp(5432), "PostgreSQL to the cluster")
        cluster_id = f"videocall-{Stack.of(self).stack_name.lower()}"
        # Created here, not by RDS, so it has our retention and KMS key (and needs no log-retention Lambda).
        db_logs = logs.LogGroup(
            self,
            "PostgresLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_id}/postgresql",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_6),
            credentials=rds.Credentials.from_generated_secret(DB_ADMIN, encryption_key=key),
            default_database_name=DB_NAME,
            writer=rds.ClusterInstance.serverless_v2(
                "Writer", enable_performance_insights=True, performance_insight_encryption_key=key
            ),
            readers=[
                rds.ClusterInstance.serverless_v2(
                    "Reader",
                    scale_with_writer=True,
                    enable_performance_insights=True,
                    performance_insight_encryption_key=key,
                )
            ]
            if prod
            else [],
            serverless_v2_min_capacity=0.5,
            serverless_v2_max_capacity=8 if prod else 2,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[db_sg],
            storage_encrypted=True,
            storage_encryption_key=key,
            iam_authentication=True,
            backup=rds.BackupProps(retention=Duration.days(35 if prod else 7)),
            deletion_protection=prod,
            removal_policy=RemovalPolicy.SNAPSHOT if prod else RemovalPolicy.DESTROY,
            cluster_identifier=cluster_id,
            cloudwatch_logs_exports=["postgresql"],
            monitoring_interval=Duration.seconds(60),
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        # Only the CfnDBCluster waits for the log group (the whole construct would close a cycle through the key).
        assert self.cluster.node.default_child is not None
        self.cluster.node.default_child.node.add_dependency(db_logs)
        assert self.cluster.secret is not None
        self.secret = self.cluster.secret
        self.cluster.add_rotation_single_user(automatically_after=Duration.days(30))
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.cluster.secret],
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[proxy_sg],
            require_tls=True,
            iam_auth=True,
            idle_client_timeout=Duration.minutes(30),
            max_connections_percent=80,
        )
        findings = [
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="Cluster/MonitoringRole: AmazonRDSEnhancedMonitoringRole "
                "is the policy RDS enhanced monitoring requires",
                applies_to=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
                ],
            ),
            NagPackSuppression(
                id="HIPAA.Security-IAMNoInlinePolicy",
                reason="Cluster/Proxy/IAMRole: the proxy's "
                "generated policy reads exactly the cluster secret and decrypts it with the data key",
            ),
            NagPackSuppression(
                id="HIPAA.Security-RDSInBackupPlan",
                reason="Cluster: Aurora backs up at cluster "
                "level (automated backups with point-in-time recovery, 35 days in prod, 7 otherwise); "
                "the instances have nothing to back up of their own",
            ),
        ]
        if not prod:
            findings += [
                NagPackSuppression(
                    id="AwsSolutions-RDS10",
                    reason="Cluster: deletion protection is on in prod only; non-prod stacks are torn down and rebuilt",
                ),
                NagPackSuppression(
                    id="HIPAA.Security-RDSInstanceDeletionProtectionEnabled",
                    reason="Cluster: deletion protection is on in prod only; non-prod stacks are torn down",
                ),
            ]
        NagSuppressions.add_resource_suppressions(self.cluster, findings, apply_to_children=True)
        NagSuppressions.add_resource_suppressions(
            self.cluster,
            [
                NagPackSuppression(
                    id="CdkNagValidationFailure",
                    reason="Cluster security group rules use the "
                    "cluster port token; the rules only admit the proxy and the rotation function",
                )
            ],
            apply_to_children=True,
        )
        NagSuppressions.add_resource_suppressions(
            db_sg,
            [
                NagPackSuppression(
                    id="CdkNagValidationFailure",
                    reason="DbSg: ingress rules reference the cluster "
                    "port token; they admit only the proxy and the rotation function's groups",
                )
            ],
            apply_to_children=True,
        )
        self.environment = {
            "DB_AUTH": "iam",
            "DB_HOST": self.proxy.endpoint,
            "DB_PORT": "5432",
            "DB_NAME": DB_NAME,
            "DB_USER": DB_ADMIN,
        }

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        if self.proxy is not None:
            self.proxy.grant_connect(grantee, DB_ADMIN)
        else:
            self.secret.grant_read(grantee)
