"""The HTTP edge: resolvers built from the route table, the verified caller of each invocation, the one place domain
errors become HTTP responses, and the Lambda entry point every handler module uses.
"""

# No `from __future__ import annotations` here: Powertools reads the dependencies' type hints
# (typing.get_type_hints) on every request, and string annotations would be compiled each time.
import json
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from importlib import import_module
from typing import Annotated, Any

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videocall.core.auth import extract_token
from videocall.core.errors import (
    BodyTooLarge,
    DomainError,
    InvalidRequest,
    MalformedJson,
    TokenMissing,
    UnknownAction,
)
from videocall.core.languages import LANGUAGE_FIELDS, unsupported_language
from videocall.core.observability import count_failure, logger, metrics, safe_traceback, tracer
from videocall.core.routing import Route
from videocall.core.schema import GUID_PATTERN
from videocall.openapi import responses_of
from videocall.runtime import runtime

API_TITLE = "Telehealth video-call API"
API_VERSION = "1.0.0"


# --- the caller of this invocation ----------------------------------------------------------------------
# The entry point verifies the token before any body is read, and sets these for one invocation. Endpoints
# read them with `caller()` rather than through Powertools' Depends: Powertools rebuilds a dependency tree
# (typing.get_type_hints on each function) on every request, 0.06 ms of a 1.1 ms join, measured.
_VERIFIED_UID: ContextVar[str | None] = ContextVar("verified_uid", default=None)
_REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def caller() -> tuple[str, str | None]:
    """The verified Firebase uid of this invocation's caller, and API Gateway's request id (for the audit
    trail). Only the entry point (`make_lambda_handler`) runs endpoints, and it has verified the token."""
    uid = _VERIFIED_UID.get()
    if uid is None:
        raise TokenMissing()
    return uid, _REQUEST_ID.get()


LANGUAGE_FIELDS_LOC = [(field,) for field in LANGUAGE_FIELDS]
MeetingIdParam = Annotated[str, Path(pattern=GUID_PATTERN, description="The Chime MeetingId (a GUID)")]
AppointmentIdParam = Annotated[str, Path(pattern=r"^[-_a-zA-Z0-9]{2,64}$", description="The app's appointment id")]
PatientIdParam = Annotated[str, Path(pattern=GUID_PATTERN, description="The patient's user id")]
UserIdParam = Annotated[str, Path(min_length=1, max_length=64, description="A participant's user id")]


# --- response bodies ---------------------------------------------------------------------------------
def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":"), default=str),
        headers=headers,
    )


def error_response(error: DomainError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    retry_after = getattr(error, "retry_after", None)  # 503s, and 409s such as attachment_not_scanned
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return json_response(error.status, {"error": body}, headers)


def _validation_error(exc: RequestValidationError) -> DomainError:
    """Say what is wrong by field, never echoing the values sent (they can be patient data)."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return MalformedJson()
    if any(e.get("type") in ("union_tag_invalid", "union_tag_not_found") for e in errors):
        return UnknownAction()
    if any(e.get("type") == "literal_error" and e.get("loc", ())[-1:] in LANGUAGE_FIELDS_LOC for e in errors):
        return unsupported_language()  # the 400 with the supported list, as before validation knew the enum
    problems = []
    for e in errors[:10]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "body"
        problems.append(f"{loc}: {e.get('msg', e.get('type', 'invalid'))}")
    return InvalidRequest("Invalid request: " + "; ".join(problems) + ".")


def _register_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(DomainError)
    def _domain(error: DomainError) -> Response:
        if error.status >= 500:
            logger.warning("request failed upstream", extra={"error_code": error.code})
        return error_response(error)

    @app.exception_handler(RecursionError)
    def _too_deep(_: RecursionError) -> Response:
        # A body nested thousands deep: request validation gives up before any handler of ours.
        return error_response(MalformedJson("The request body is nested too deeply."))

    @app.exception_handler(psycopg.DataError)
    def _data(exc: psycopg.DataError) -> Response:
        # A value the database cannot hold that validation let through: the request's fault, said without it.
        logger.warning("database refused a value", extra={"sqlstate": exc.sqlstate})
        return error_response(InvalidRequest("A value in the request cannot be stored."))

    @app.exception_handler(UnicodeEncodeError)
    def _not_unicode(_: UnicodeEncodeError) -> Response:
        # JSON can spell a lone surrogate ("\ud800"); no UTF-8 text (the database's, a log's) can hold it.
        return error_response(InvalidRequest("A string in the request is not valid Unicode."))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(_validation_error(exc))

    @app.not_found
    def _no_route(_: NotFoundError) -> Response:
        return json_response(404, {"error": {"code": "route_not_found", "message": "No such route."}})

    app.exception_handler(Exception)(_unexpected)


def _unexpected(exc: Exception) -> Response:
    # Type and place only: an exception's message can carry data.
    logger.error("unexpected error", extra={"error_type": type(exc).__name__, "where": safe_traceback(exc)})
    count_failure("internal")
    return json_response(500, {"error": {"code": "internal_error", "message": "Something went wrong on our side."}})


def build_resolver(routes: Iterable[Route] | None = None) -> APIGatewayRestResolver:
    """A resolver for `routes` (the whole API when None: the local server, tests, the OpenAPI document)."""
    if routes is None:
        from videocall.routes import ROUTES

        routes = ROUTES
    app = APIGatewayRestResolver(enable_validation=True)
    _register_error_handlers(app)
    for route in routes:
        endpoint = import_module(route.module).endpoint
        app.route(
            route.powertools_rule,
            route.method,
            summary=route.summary,
            operation_id=route.name,
            status_code=route.status_code,
            responses=responses_of(route),  # from the route table: videocall.openapi
        )(endpoint)
    return app


# --- the Lambda entry point ------------------------------------------------------------------------------
def make_lambda_handler(
    app: APIGatewayRestResolver,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            refused = _refused_before_parsing(event)
        except Exception as exc:  # as the resolver's handler would: a 500 that says nothing
            return _proxy_response(_unexpected(exc))
        if isinstance(refused, DomainError):
            if refused.status >= 500:
                logger.warning("request failed upstream", extra={"error_code": refused.code})
            return _proxy_response(error_response(refused))
        verified = _VERIFIED_UID.set(refused)
        request = _REQUEST_ID.set((event.get("requestContext") or {}).get("requestId"))
        try:
            return app.resolve(_as_json_request(event), context)
        finally:
            _REQUEST_ID.reset(request)
            _VERIFIED_UID.reset(verified)

    return handler


# A JSON \u0000 escape: an odd number of backslashes before u0000 (an even number is a literal backslash).
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _refused_before_parsing(event: dict[str, Any]) -> DomainError | str:
    """In a fixed order, before any body is read: no or bad token -> 401, too large -> 413, NUL -> 400.
    Every route of this API needs a caller: the token is verified here (its uid returned for the route's
    dependency), so a forged token with a huge or broken body is a 401, never a 413 or 400."""
    try:
        uid = runtime().authenticator.verify(extract_token(event.get("headers") or {}))
    except DomainError as refused:
        return refused
    body = event.get("body") or ""
    if len(body) > runtime().settings.max_body_bytes:
        return BodyTooLarge()
    if "\x00" in body or _NUL_ESCAPE.search(body):
        # PostgreSQL text cannot hold NUL; no field of this API needs one.
        return InvalidRequest("The request body contains a NUL character.")
    return uid


def _proxy_response(response: Response) -> dict[str, Any]:
    # With the error's own headers (Retry-After of a 503 when the token certificates are unavailable).
    own = {k: v for k, v in response.headers.items() if isinstance(v, str)}
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": "application/json", **own},
        "body": response.body,
        "isBase64Encoded": False,
    }


def _as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """Every body this API takes is JSON, whatever Content-Type says: the old endpoint read the body as
    JSON regardless, and the app (and curl -d) must keep working."""
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    headers["content-type"] = "application/json"
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    multi["content-type"] = ["application/json"]
    return {**event, "headers": headers, "multiValueHeaders": multi}


def lambda_handler_for(
    route_name: str, context_routes: Iterable[Route]
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The handler of one Lambda function: a resolver that knows only its own route, looked up in its
    context's table (videocall.routes gathers every context's: importing it would import the whole API,
    every context's models and services, into each function's cold start)."""
    (route,) = [r for r in context_routes if r.name == route_name]
    return make_lambda_handler(build_resolver([route]))
