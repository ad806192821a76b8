"""The REST API: one Lambda function per route of the project's route table (videocall.routes), so a
route is written down once. Stage throttling, JSON access logs (no headers, no bodies: tokens and
patient data stay out), X-Ray, CORS for the app's origins, and an optional WAF web ACL.

Request body size: API Gateway REST has no size setting of its own. The WAF web ACL (prod default)
blocks bodies over 64 KB at the edge; the functions refuse them too (MAX_BODY_BYTES -> 413).

API Gateway's own answers (unknown route or method, throttling, too large, WAF blocks, timeouts) are
Gateway Responses in the API's error shape, {"error": {"code", "message"}} as application/json: see
GATEWAY_RESPONSES. An unknown route and an undeclared method on a known path are one response type to
API Gateway (MISSING_AUTHENTICATION_TOKEN), so both are 404 route_not_found.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class GatewayAnswer:
    """One of API Gateway's own answers (no function ran), in the API's {"error": {code, message}} shape."""

    type: apigw.ResponseType
    status: int | None  # None: API Gateway's own status for the type (the DEFAULT_* families)
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> str:
        return json.dumps({"error": {"code": self.code, "message": self.message}}, separators=(",", ":"))

    @property
    def template(self) -> str:
        # Fixed text plus API Gateway's name for what happened: no request value is ever echoed.
        return json.dumps(
            {"error": {"code": self.code, "message": self.message,
                       "details": {"gatewayResponse": "$context.error.responseType"}}},
            separators=(",", ":"),
        )  # fmt: skip


# An unknown path or an undeclared method (PUT /meetings, TRACE, QUERY) is MISSING_AUTHENTICATION_TOKEN
# to API Gateway: 404 route_not_found, like the functions' own answer to a path no route matches.
GATEWAY_RESPONSES: tuple[GatewayAnswer, ...] = (
    GatewayAnswer(apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, 404, "route_not_found", "No such route."),
    GatewayAnswer(apigw.ResponseType.RESOURCE_NOT_FOUND, 404, "route_not_found", "No such route."),
    GatewayAnswer(apigw.ResponseType.THROTTLED, 429, "throttled", "Too many requests; retry later.",
                  {"Retry-After": "1"}),
    GatewayAnswer(apigw.ResponseType.QUOTA_EXCEEDED, 429, "throttled", "Too many requests; retry later.",
                  {"Retry-After": "60"}),
    GatewayAnswer(apigw.ResponseType.REQUEST_TOO_LARGE, 413, "body_too_large", "The request is too large."),
    GatewayAnswer(apigw.ResponseType.BAD_REQUEST_PARAMETERS, 400, "invalid_request",
                  "A path parameter is missing or not valid."),
    GatewayAnswer(apigw.ResponseType.BAD_REQUEST_BODY, 400, "invalid_request", "The request body is not valid."),
    GatewayAnswer(apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type",
                  "This media type is not supported."),
    GatewayAnswer(apigw.ResponseType.WAF_FILTERED, 403, "request_blocked", "The request was blocked."),
    # The function could not be invoked (throttled at its reserved concurrency, or failing to start):
    # a 503 the app retries after Retry-After, never a bare 5xx (benchmarks/ratelimit.py shows the load).
    GatewayAnswer(apigw.ResponseType.INTEGRATION_FAILURE, 503, "service_unavailable",
                  "The service is busy; retry later.", {"Retry-After": "1"}),
    GatewayAnswer(apigw.ResponseType.INTEGRATION_TIMEOUT, 504, "upstream_timeout",
                  "The request took too long; retry later.", {"Retry-After": "1"}),
    GatewayAnswer(apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", "The request was refused."),
    GatewayAnswer(apigw.ResponseType.DEFAULT_5_XX, None, "internal_error", "Something went wrong on our side."),
)  # fmt: skip


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
                # No console test-invoke permission: one Lambda::Permission per method, not two (the
                # stack stays under CloudFormation's 500 resources).
                apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False),
                operation_name=route.name,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )
        self.web_acl = self._waf(config, key, log_retention) if config.waf else None
        add_gateway_responses(self.api, config.cors_origins)
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
            # The WAF's own blocks answer in the API's error shape too (the rest: WAF_FILTERED above).
            custom_response_bodies={
                answer.code: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON", content=answer.body
                )
                for answer in WAF_ANSWERS
            },
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="BodyOver64KB",
                    priority=0,
                    action=_block_with(413, "body_too_large"),
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
                    action=_block_with(429, "throttled", retry_after=60),
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


WAF_ANSWERS = (
    GatewayAnswer(apigw.ResponseType.WAF_FILTERED, 413, "body_too_large", "The request body is too large."),
    GatewayAnswer(apigw.ResponseType.WAF_FILTERED, 429, "throttled", "Too many requests; retry later."),
)


def _block_with(status: int, code: str, *, retry_after: int | None = None) -> wafv2.CfnWebACL.RuleActionProperty:
    headers = [wafv2.CfnWebACL.CustomHTTPHeaderProperty(name="Retry-After", value=str(retry_after))]
    return wafv2.CfnWebACL.RuleActionProperty(
        block=wafv2.CfnWebACL.BlockActionProperty(
            custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                response_code=status,
                custom_response_body_key=code,
                response_headers=headers if retry_after is not None else None,
            )
        )
    )


def add_gateway_responses(api: apigw.RestApi, cors_origins: Sequence[str] = ()) -> None:
    """API Gateway's own answers in the API's error shape (GATEWAY_RESPONSES): the functions' error body,
    fixed codes and messages, nothing of the request echoed."""
    headers = {"Content-Type": "'application/json'"}
    if len(cors_origins) == 1:  # so the app in a browser can read the error (several origins: not expressible)
        headers["Access-Control-Allow-Origin"] = f"'{cors_origins[0]}'"
    for response in GATEWAY_RESPONSES:
        extra = {name: f"'{value}'" for name, value in response.headers.items()}
        api.add_gateway_response(
            "Gateway" + response.type.response_type.title().replace("_", ""),
            type=response.type,
            status_code=str(response.status) if response.status else None,
            response_headers={**headers, **extra},
            templates={"application/json": response.template},
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
