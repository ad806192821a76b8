"""The REST API: one Lambda function per route of the project's route table (videocall.routes), so a
route is written down once. Stage throttling, JSON access logs (no headers, no bodies: tokens and
patient data stay out), X-Ray, CORS for the app's origins, and an optional WAF web ACL.

Request body size: API Gateway REST has no size setting of its own. The WAF web ACL (prod default)
blocks bodies over 64 KB at the edge; the functions refuse them too (MAX_BODY_BYTES -> 413).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from videocall.routes import ROUTES

from infra.components.functions import FunctionFactory
from infra.config import StageConfig

MAX_BODY_BYTES = 64 * 1024


class MeetingApi(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        factory: FunctionFactory,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        cors = (
            apigw.CorsOptions(
                allow_origins=list(config.cors_origins),
                allow_methods=sorted({r.method for r in ROUTES}),
                allow_headers=["content-type", "authorization", "x-firebase-token"],
                max_age=Duration.hours(1),
            )
            if config.cors_origins
            else None
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"videocall-{config.stage}",
            description="Telehealth video-call API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # would log request and response bodies: JoinTokens, patient data
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(
                    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
                    '"time":"$context.requestTime","method":"$context.httpMethod","path":"$context.resourcePath",'
                    '"status":"$context.status","latencyMs":"$context.responseLatency",'
                    '"integrationLatencyMs":"$context.integrationLatency","bytes":"$context.responseLength",'
                    '"wafStatus":"$context.waf.status"}'
                ),
            ),
        )
        validator = self.api.add_request_validator(
            "Params", request_validator_name="path-parameters", validate_request_parameters=True
        )
        self.functions: dict[str, lambda_.Function] = {}
        for route in ROUTES:
            function = factory.make(
                route.name,
                route.handler,
                description=f"{route.method} {route.path}",
                reserved_concurrency=config.reserved_concurrency or None,
                aws_actions=route.aws_actions,
            )
            self.functions[route.name] = function
            resource = self.api.root.resource_for_path(route.path)
            params = {f"method.request.path.{p}": True for p in _path_params(route.path)}
            resource.add_method(
                route.method,
                apigw.LambdaIntegration(function, proxy=True),
                operation_name=route.name,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )
        self.web_acl = self._waf(config, key, log_retention) if config.waf else None
        self._suppress(config)

    def _suppress(self, config: StageConfig) -> None:
        auth = (
            "each function verifies the Firebase ID token (firebase-admin verify_id_token) and maps it to a "
            "registered user before doing anything; the identity provider is Firebase, not Cognito, and a "
            "separate authorizer would add a second cold start to every call"
        )
        NagSuppressions.add_resource_suppressions(
            self.api,
            [
                NagPackSuppression(id="AwsSolutions-APIG4", reason=f"API methods: {auth}"),
                NagPackSuppression(id="AwsSolutions-COG4", reason=f"API methods: {auth}"),
                NagPackSuppression(
                    id="AwsSolutions-APIG2",
                    reason="Api: path parameters are validated by the path-parameters validator; bodies are "
                    "validated in the functions against the Pydantic models that generate openapi.json, which "
                    "answer field by field in the API's own error format (API Gateway's validator would not)",
                ),
                NagPackSuppression(
                    id="HIPAA.Security-APIGWCacheEnabledAndEncrypted",
                    reason="Api stage: responses carry per-user credentials (JoinTokens) and patient data and "
                    "must never be cached",
                ),
                NagPackSuppression(
                    id="HIPAA.Security-APIGWSSLEnabled",
                    reason="Api stage: the backends are Lambda integrations, not HTTP endpoints, so there is no "
                    "backend to present a client certificate to; clients reach the API over TLS only",
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="Api/CloudWatchRole: AmazonAPIGatewayPushToCloudWatchLogs is the account-level role API "
                    "Gateway requires to write access and execution logs",
                    applies_to=[
                        "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                    ],
                ),
                *(
                    [
                        NagPackSuppression(
                            id="AwsSolutions-APIG3",
                            reason=f"Api stage: WAF is off for stage {config.stage} (context wafEnabled); on by "
                            "default in prod",
                        )
                    ]
                    if not config.waf
                    else []
                ),
            ],
            apply_to_children=True,
        )

    def _waf(self, config: StageConfig, key: kms.IKey, log_retention: logs.RetentionDays) -> wafv2.CfnWebACL:
        def managed(name: str, priority: int, overrides: list[str] | None = None) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=o, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for o in overrides or []
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"videocall-{config.stage}"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="BodyOver64KB",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")
                            ),
                            comparison_operator="GT",
                            size=MAX_BODY_BYTES,
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )
                    ),
                    visibility_config=_visibility("BodyOver64KB"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=1000, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility("RatePerIp"),
                ),
                managed("AWSManagedRulesAmazonIpReputationList", 2),
                # A batch-join of 250 user ids is ~10 KB: the common set's 8 KB body rule only counts;
                # BodyOver64KB above is the size limit.
                managed("AWSManagedRulesCommonRuleSet", 3, overrides=["SizeRestrictions_BODY"]),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 4),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", web_acl_arn=acl.attr_arn, resource_arn=self.api.deployment_stage.stage_arn
        )
        waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-videocall-{config.stage}",  # WAF requires the prefix
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=acl.attr_arn,
            log_destination_configs=[waf_logs.log_group_arn],
            # The ID token is a credential: never in WAF logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "x-firebase-token"}),
            ],
        )
        return acl


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
