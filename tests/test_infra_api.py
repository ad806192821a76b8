"""API Gateway's own answers (no function ran) in the API's error shape: Gateway Responses and the WAF's
custom block responses, asserted on synthesized templates.

Most tests synthesize a small stack holding only a RestApi with the Gateway Responses (a second);
the last ones read the whole app's template, shared with tests/test_infra.py (synthesized once)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Template
from videocall.core.schema import ErrorResponse
from videocall.openapi import COMMON_ERRORS

from infra.components.api import GATEWAY_RESPONSES, add_gateway_responses

ORIGIN = "https://app.example.org"


def gateway_responses(cors_origins: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    app = App()
    stack = Stack(app, "ApiOnly")
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET")
    add_gateway_responses(api, cors_origins)
    found = Template.from_stack(stack).find_resources("AWS::ApiGateway::GatewayResponse")
    return {r["Properties"]["ResponseType"]: r["Properties"] for r in found.values()}


@pytest.fixture(scope="module")
def responses() -> dict[str, dict[str, Any]]:
    return gateway_responses((ORIGIN,))


def rendered(template: str) -> Any:
    """The body API Gateway sends: the template with its one variable filled in."""
    return json.loads(template.replace("$context.error.responseType", "THROTTLED"))


def test_unknown_routes_and_methods_throttling_and_size_answer_with_our_codes(responses):
    expected = {
        "MISSING_AUTHENTICATION_TOKEN": ("404", "route_not_found"),  # unknown path, PUT /meetings, TRACE, QUERY
        "THROTTLED": ("429", "throttled"),
        "REQUEST_TOO_LARGE": ("413", "body_too_large"),
        "DEFAULT_4XX": (None, "bad_request"),
        "DEFAULT_5XX": (None, "internal_error"),
    }
    for kind, (status, code) in expected.items():
        properties = responses[kind]
        assert properties.get("StatusCode") == status, kind
        assert rendered(properties["ResponseTemplates"]["application/json"])["error"]["code"] == code


def test_every_gateway_answer_is_the_api_error_body_as_json(responses):
    assert set(responses) == {r.type.response_type for r in GATEWAY_RESPONSES}
    for kind, properties in responses.items():
        templates = properties["ResponseTemplates"]
        assert list(templates) == ["application/json"], kind
        body = rendered(templates["application/json"])
        ErrorResponse.model_validate(body)  # the schema every declared error of openapi.json uses
        assert set(body["error"]) == {"code", "message", "details"}, kind
        assert properties["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"


def test_nothing_of_the_request_is_echoed(responses):
    for kind, properties in responses.items():
        template = properties["ResponseTemplates"]["application/json"]
        variables = {part.split('"')[0] for part in template.split("$")[1:]}
        assert variables == {"context.error.responseType"}, (kind, variables)  # no $input, no $context.error.message


def test_throttling_says_when_to_retry(responses):
    for kind in ("THROTTLED", "QUOTA_EXCEEDED"):
        retry_after = responses[kind]["ResponseParameters"]["gatewayresponse.header.Retry-After"]
        assert int(retry_after.strip("'")) > 0


def test_the_codes_match_the_functions_own_answers(responses):
    """The same situation has the same code whether API Gateway or a function answers it."""
    ours = {e.status: e.code for e in COMMON_ERRORS if e.status in (413, 429)}
    assert (
        rendered(responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"])["error"]["code"]
        == (ours[413])
    )
    assert rendered(responses["THROTTLED"]["ResponseTemplates"]["application/json"])["error"]["code"] == ours[429]


def test_one_app_origin_lets_the_browser_read_the_error_and_several_add_no_wildcard(responses):
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == (
        f"'{ORIGIN}'"
    )
    several = gateway_responses((ORIGIN, "https://other.example.org"))
    assert all(
        "gatewayresponse.header.Access-Control-Allow-Origin" not in p["ResponseParameters"] for p in several.values()
    )


# --- the whole app (shared synth with tests/test_infra.py) -------------------------------------------------
@pytest.fixture(scope="module")
def prod() -> Any:
    from test_infra import synthesized

    return synthesized("prod")


def test_the_app_has_the_gateway_responses(prod):
    kinds = {r["Properties"]["ResponseType"] for r in prod.resources("AWS::ApiGateway::GatewayResponse").values()}
    assert kinds == {r.type.response_type for r in GATEWAY_RESPONSES}


def test_the_waf_blocks_answer_in_the_api_error_shape(prod):
    (acl,) = prod.resources("AWS::WAFv2::WebACL").values()
    bodies = acl["Properties"]["CustomResponseBodies"]
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    for rule, status in (("BodyOver64KB", 413), ("RatePerIp", 429)):
        response = rules[rule]["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == status
        body = bodies[response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        ErrorResponse.model_validate(json.loads(body["Content"]))
    assert rules["RatePerIp"]["Action"]["Block"]["CustomResponse"]["ResponseHeaders"] == [
        {"Name": "Retry-After", "Value": "60"}
    ]
