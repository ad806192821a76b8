"""The VPC the functions and the database live in.

- Isolated subnets: the database. Private subnets with egress: the functions.
- NAT: the API functions verify Firebase ID tokens against Google's public certificates
  (www.googleapis.com); an external database (databaseMode=external, e.g. Supabase) is outside AWS;
  and the AWS services without an interface endpoint here are reached over it, TLS to their public
  regional endpoints: Comprehend Medical (comprehendMedicalRegion, eu-west-1: an interface endpoint
  only serves its own region's service, so none could reach it from eu-central-1), Bedrock runtime
  (bedrockRegion), S3 and X-Ray.
- Interface endpoints: meetings-chime and media-pipelines-chime (the Chime SDK), Secrets Manager.
- Egress: the functions' security group allows all outbound traffic (no rule limits 443 to given
  destinations, which would have to list the public IP ranges of those services), so these calls
  need nothing more; tests/test_infra.py asserts it so a tightened rule is a conscious change.
- Flow logs to a KMS-encrypted log group; the default security group allows nothing.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from cdk_nag import NagSuppressions
from constructs import Construct


class Network(Construct):
    def __init__(
        self, scope: Construct, id: str, *, key: kms.IKey, prod: bool, log_retention: logs.RetentionDays
    ) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2 if not prod else 3,
            nat_gateways=2 if prod else 1,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, map_public_ip_on_launch=False
                ),
                ec2.SubnetConfiguration(name="functions", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        )
        flow_log = self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        NagSuppressions.add_resource_suppressions(
            flow_log,
            [
                {
                    "id": "HIPAA.Security-IAMNoInlinePolicy",
                    "reason": "Vpc/FlowLog/IAMRole: the generated policy writes only to the flow-log group",
                }
            ],
            apply_to_children=True,
        )

        # All outbound allowed: besides the endpoints below, the functions reach Google's token certificates,
        # Comprehend Medical in eu-west-1 and the Bedrock runtime over the NAT (HTTPS to public endpoints whose
        # addresses are not fixed). Restricting 443 to prefix lists or CIDRs would break those calls.
        self.function_sg = ec2.SecurityGroup(
            self, "FunctionsSg", vpc=self.vpc, description="Video-call Lambda functions", allow_all_outbound=True
        )
        endpoint_sg = ec2.SecurityGroup(
            self, "EndpointsSg", vpc=self.vpc, description="Interface endpoints", allow_all_outbound=False
        )
        endpoint_sg.add_ingress_rule(self.function_sg, ec2.Port.tcp(443), "HTTPS from the functions")
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        for name, service in (
            ("ChimeMeetings", ec2.InterfaceVpcEndpointService(f"com.amazonaws.{Aws.REGION}.meetings-chime", 443)),
            (
                "ChimeMediaPipelines",
                ec2.InterfaceVpcEndpointService(f"com.amazonaws.{Aws.REGION}.media-pipelines-chime", 443),
            ),
            ("SecretsManager", ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER),
        ):
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=subnets,
                security_groups=[endpoint_sg],
                private_dns_enabled=True,
                open=False,  # only the functions' security group, not the whole VPC
            )
        for index, subnet in enumerate(self.vpc.public_subnets, start=1):
            NagSuppressions.add_resource_suppressions(
                subnet,
                [
                    {
                        "id": "HIPAA.Security-VPCNoUnrestrictedRouteToIGW",
                        "reason": f"public subnet {index} holds only the NAT gateway, whose route to the internet "
                        "gateway is what lets the functions fetch Google's token certificates and reach the AWS "
                        "services without an endpoint here (Comprehend Medical in eu-west-1, Bedrock, S3)",
                    }
                ],
                apply_to_children=True,
            )
