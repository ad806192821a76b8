"""schemathesis against the OpenAPI document, through the same Lambda entry point API Gateway calls.

Every operation of openapi.json (generated from the route table, so new routes are fuzzed as soon as
they exist) is called with generated valid and invalid inputs, as a provider and as a patient, and
every answer is checked (all of schemathesis's checks): no 5xx, status and body as declared,
Content-Type, invalid input refused, valid input accepted, no auth ignored.

Quick by default (a few cases per operation, tens of seconds). The full run:

    VIDEOCALL_FUZZ=full .venv/bin/pytest tests/test_fuzz.py -q -s

generates at least 1,000 cases (it says how many), plus the stateful run that chains create ->
join / add / get / end through the document's links.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from conftest import World  # noqa: E402
from hypothesis import HealthCheck, assume, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from schemathesis.specs.openapi.checks import unsupported_method  # noqa: E402
from videocall import cli  # noqa: E402
from videocall.http import build_resolver, make_lambda_handler  # noqa: E402
from videocall.local.server import LambdaContextStub, rest_event  # noqa: E402
from videocall.local.stack import BUS  # noqa: E402
from videocall.runtime import Runtime  # noqa: E402

FULL = os.environ.get("VIDEOCALL_FUZZ", "").lower() == "full"
EXAMPLES = 60 if FULL else 3  # per operation and caller, on top of the coverage phase's cases
STATEFUL_STEPS = (40, 25) if FULL else (4, 6)  # (state machine runs, steps each) per caller
PERSONAS = ("provider", "patient")

CASES: Counter[str] = Counter()  # requests sent, by "METHOD status"


class LambdaWsgi:
    """A WSGI face on the Lambda entry point: each request becomes the REST proxy event API Gateway
    sends, so schemathesis tests exactly what runs in AWS (and in `videocall serve`)."""

    def __init__(self) -> None:
        self._handler = make_lambda_handler(build_resolver())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        # PEP 3333: PATH_INFO is the URL-decoded bytes as latin-1; API Gateway hands over UTF-8 text.
        path = (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")
        event = rest_event(
            environ["REQUEST_METHOD"], path, headers, raw.decode("utf-8", "replace") if raw else None,
            environ.get("QUERY_STRING", ""),
        )  # fmt: skip
        result = self._handler(event, LambdaContextStub())  # type: ignore[arg-type]
        BUS.deliver()  # Chime's events caused by the request reach their handlers, as in AWS
        status = int(result["statusCode"])
        CASES[f"{environ['REQUEST_METHOD']} {status}"] += 1
        out: dict[str, str] = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
        out.update(result.get("headers") or {})
        body = (result.get("body") or "").encode()
        start_response(f"{status} X", [*out.items(), ("Content-Length", str(len(body)))])
        return [body]


# The document as `videocall openapi` writes it (the freshness test ties it to openapi.json). Each
# operation is its own test item; the handler needs the `runtime` fixture's runtime only when called.
# NUL is refused in any body string (PostgreSQL text cannot hold it; the document says so), which
# JSON Schema cannot say of unknown keys: generated strings leave it out.
# Quick mode leaves out the coverage phase (hundreds of boundary cases per operation).
# A value over a documented maximum that is also a size limit (an attachment over the cap) is refused with
# the more precise 413 (attachment_too_large): a rejection, as the check wants.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
CONFIG = schemathesis.Config.from_dict({
    "generation": {"allow-x00": False}, "phases": {"coverage": {"enabled": FULL}},
    "checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}},
})  # fmt: skip
schema = schemathesis.openapi.from_dict(json.loads(cli.openapi_document()), config=CONFIG)
schema.app = LambdaWsgi()


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


@schema.hook
def filter_body(context: Any, body: Any) -> bool:
    """allow-x00 does not reach every strategy (array items, unknown keys): the documented rule, enforced."""
    return not has_nul(body)


APPOINTMENT_ID = re.compile(r"^[-_a-zA-Z0-9]{2,64}$")
STEERED = Counter[str]()


def steer(body: Any) -> Any:
    """Every other body naming a (valid) appointment names the world's, so create gets past 403
    not_a_participant to a real meeting; invalid ids stay as generated (negative cases stay negative)."""
    if (
        isinstance(body, dict)
        and isinstance(body.get("appointmentId"), str)
        and APPOINTMENT_ID.match(body["appointmentId"])
    ):
        STEERED["bodies"] += 1
        if STEERED["bodies"] % 2:
            body["appointmentId"] = "appt_123"  # conftest's world
    return body


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    return steer(body)


# An undeclared method never reaches the Lambda entry in AWS: API Gateway answers it itself (404
# route_not_found, tests/test_infra_api.py); the local server's own answer is tested with the server.
EXCLUDED = [unsupported_method]

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=not FULL,
    suppress_health_check=list(HealthCheck), print_blob=True,
)  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# One test per caller (schemathesis's parametrize takes no parametrized fixture): the appointment's
# provider and its patient, each with a valid ID token.
@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented_to_a_provider(case: Any, runtime: Runtime, world: World) -> None:
    assume(not has_nul(case.body))
    case.call_and_validate(headers=bearer(world.provider.token), excluded_checks=EXCLUDED)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented_to_a_patient(case: Any, runtime: Runtime, world: World) -> None:
    assume(not has_nul(case.body))
    case.call_and_validate(headers=bearer(world.patient.token), excluded_checks=EXCLUDED)


@pytest.mark.parametrize("persona", PERSONAS)
def test_stateful_call_life_answers_as_documented(runtime: Runtime, world: World, persona: str) -> None:
    token = getattr(world, persona).token
    machine = schema.as_state_machine()

    class Machine(machine):  # type: ignore[misc, valid-type]
        def before_call(self, case: Any) -> None:
            steer(case.body)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": bearer(token)}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(
                response, excluded_checks=EXCLUDED, transport_kwargs=kwargs or None,
                recorder=getattr(self, "recorder", None),
            )  # fmt: skip

    runs, steps = STATEFUL_STEPS
    run_state_machine_as_test(
        Machine,
        settings=settings(FUZZ_SETTINGS, max_examples=runs, stateful_step_count=steps),
    )


def test_the_full_run_generates_enough_cases() -> None:
    """Runs last in this file: the count of the run above (printed with -s)."""
    total = sum(CASES.values())
    print(f"\nfuzz: {total} requests; by method and status: {dict(sorted(CASES.items()))}")
    assert not [key for key in CASES if key.split()[1].startswith("5")], CASES
    if FULL:
        assert total >= 1000, total
