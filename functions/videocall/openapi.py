"""The OpenAPI document, generated from the route table: never written by hand.

A route's declared answers are its success status (and `Route.also`), and one response per error
status it can give, from the errors that can happen:
- on every route (COMMON_ERRORS): 400 invalid_request / malformed_json, the 401s, 413, 503s
  (database, token certificates), and 429 (API Gateway's throttling, shaped like ours);
- implied by the route's `aws_actions`: Chime's meetings API -> 502 chime_error / 503
  chime_unavailable; S3 -> 503 storage_unavailable;
- the route's own `Route.errors` (access, state and consent errors).
Every error response has the one error body, {"error": {"code", "message", "details"?}}; its
description lists the codes; 409 and 503 carry Retry-After where an error of that status sets it.
Powertools' own 422 (never returned: validation errors are our 400) is dropped.
"""

from __future__ import annotations

import inspect
import json
from collections import defaultdict
from typing import Any

from videocall.core.errors import (
    AuthenticationError,
    BodyTooLarge,
    ChimeUnavailable,
    DatabaseUnavailable,
    DomainError,
    InvalidRequest,
    MalformedJson,
    ServiceUnavailable,
    StorageUnavailable,
    UpstreamError,
)
from videocall.core.routing import Route
from videocall.core.schema import ErrorResponse


class Throttled(DomainError):
    """API Gateway's answer past the stage's rate (infra/components/api.py shapes it like ours)."""

    status = 429
    code = "throttled"
    message = "Too many requests; retry later."
    retry_after = 1


class RouteNotFound(DomainError):
    """A path parameter the router cannot match (say a non-ASCII character) finds no route: videocall.http."""

    status = 404
    code = "route_not_found"
    message = "No such route."


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


COMMON_ERRORS: tuple[type[DomainError], ...] = (
    InvalidRequest, MalformedJson, *_subclasses(AuthenticationError), BodyTooLarge, Throttled,
    DatabaseUnavailable, ServiceUnavailable,  # (core/auth.py: Google's token certificates unreachable)
)  # fmt: skip

STATUS_TEXT = {
    400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found (or not yours)",
    409: "Conflict", 410: "Gone", 413: "Body too large", 415: "Unsupported media type", 422: "Unprocessable",
    429: "Too many requests", 502: "Upstream error", 503: "Unavailable; retry after Retry-After seconds",
}  # fmt: skip


def _chime_meetings(action: str) -> bool:
    return action.startswith("chime:") and "Pipeline" not in action


def errors_of(route: Route) -> list[type[DomainError]]:
    """Every error the route can answer with, deduplicated, in a stable order."""
    errors: list[type[DomainError]] = [*COMMON_ERRORS]
    if any(_chime_meetings(a) for a in route.aws_actions):
        errors += [UpstreamError, ChimeUnavailable]
    if any(a.startswith("s3:") for a in route.aws_actions):
        errors.append(StorageUnavailable)
    if "{" in route.path:
        errors.append(RouteNotFound)
    errors += route.errors
    return list(dict.fromkeys(errors))


def _sets_retry_after(error: type[DomainError]) -> bool:
    return (
        issubclass(error, ServiceUnavailable)
        or "retry_after" in inspect.signature(error.__init__).parameters
        or hasattr(error, "retry_after")
    )


def error_statuses(route: Route) -> dict[int, list[type[DomainError]]]:
    by_status: dict[int, list[type[DomainError]]] = defaultdict(list)
    for error in errors_of(route):
        by_status[error.status].append(error)
    return dict(sorted(by_status.items()))


def responses_of(route: Route) -> dict[int, Any]:
    """The route's responses in Powertools' form (models become component schemas)."""
    responses: dict[int, Any] = {
        route.status_code: {"description": "OK", "content": {"application/json": {"model": route.response_model}}}
    }
    for answer in route.also:
        model = answer.model or route.response_model
        content = {"application/json": {"model": model}}
        responses[answer.status] = {"description": answer.description, "content": content}
    for status, errors in error_statuses(route).items():
        codes = ", ".join(dict.fromkeys(e.code for e in errors))
        responses[status] = {
            "description": f"{STATUS_TEXT.get(status, 'Error')}: {codes}",
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return responses


SECURITY_SCHEMES = {
    "firebaseIdToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Firebase ID token of a registered user: `Authorization: Bearer <token>`.",
    },
    "firebaseIdTokenHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-firebase-token",
        "description": "The same token in the old app's header.",
    },
}

DESCRIPTION = """\
Every route needs a Firebase ID token (`Authorization: Bearer` or `x-firebase-token`). Checks run in a
fixed order, before any body is read: no or bad token -> 401, then a body over the limit -> 413, then
bad input -> 400. Every error has one shape: `{"error": {"code", "message", "details"?}}`, where
`code` is stable and the message never repeats what was sent. A string anywhere in a body must not
contain NUL (U+0000): such a body is 400 invalid_request. Unknown body keys are ignored.
API Gateway's own answers have the same shape: an unknown route or method is 404 route_not_found,
throttling is 429 throttled (Retry-After), a body over API Gateway's limit 413 body_too_large.
"""


def _retry_after_header() -> dict[str, Any]:
    return {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    }


def _meeting_id_pointer(route: Route) -> str | None:
    """Where a route's answer carries a MeetingId a later call can use (create: /meeting/MeetingId)."""
    fields = route.response_model.model_fields
    if "meeting" in fields:
        return "/meeting/MeetingId"
    if "meetingId" in fields:
        return "/meetingId"
    return None


def finish(document: dict[str, Any], routes: tuple[Route, ...]) -> dict[str, Any]:
    """What Powertools does not write: security, Retry-After, links; without its 422."""
    document["info"]["description"] = DESCRIPTION
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"firebaseIdToken": []}, {"firebaseIdTokenHeader": []}]
    by_operation = {(r.path, r.method.lower()): r for r in routes}
    consumers = [r for r in routes if "{meetingId}" in r.path]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = by_operation[(path, method)]
            declared = error_statuses(route)
            if 422 not in declared:  # Powertools' validation 422 (ours answer 400); a route's own 422 stays
                operation["responses"].pop("422", None)
            for status, errors in declared.items():
                if any(_sets_retry_after(e) for e in errors):
                    operation["responses"][str(status)]["headers"] = {"Retry-After": _retry_after_header()}
            pointer = _meeting_id_pointer(route)
            if route.method == "POST" and "{meetingId}" not in path and pointer:
                links = {
                    consumer.name: {
                        "operationId": consumer.name,
                        "parameters": {"meetingId": f"$response.body#{pointer}"},
                    }
                    for consumer in consumers
                }
                for status in [route.status_code, *(a.status for a in route.also)]:
                    operation["responses"][str(status)]["links"] = links
    schemas = document["components"].get("schemas", {})
    text = json.dumps(document["paths"])
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            schemas.pop(unused, None)
    return document


def document() -> dict[str, Any]:
    from videocall.http import API_TITLE, API_VERSION, build_resolver
    from videocall.routes import ROUTES

    app = build_resolver()
    schema = json.loads(app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION))
    return finish(schema, ROUTES)
