"""openapi.json tells the truth: what it declares is generated from the route table and the errors each
route can raise, and the server answers as it says (tests/test_fuzz.py checks the rest by generating
requests). Each fix the fuzzer prompted has its test here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Api, World, create_body
from videocall import cli
from videocall.core.errors import ServiceUnavailable
from videocall.core.languages import TRANSCRIPTION_LANGUAGES
from videocall.openapi import COMMON_ERRORS, errors_of
from videocall.routes import ROUTES, ROUTES_BY_NAME


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(cli.openapi_document())


def operation(doc: dict[str, Any], name: str) -> dict[str, Any]:
    route = ROUTES_BY_NAME[name]
    return doc["paths"][route.path][route.method.lower()]


def schema_of(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_create_declares_both_answers_new_and_live(doc):
    responses = operation(doc, "create_meeting")["responses"]
    assert {"200", "201"} <= set(responses)
    assert responses["200"]["content"] == responses["201"]["content"]


def test_the_old_endpoint_declares_each_action_s_body(doc):
    body = schema_of(
        doc, operation(doc, "chime_meeting_token")["responses"]["200"]["content"]["application/json"]["schema"]
    )
    refs = {option["$ref"].rsplit("/", 1)[1] for option in body["anyOf"]}
    assert refs == {"MeetingJoinResponse", "AddAttendeesResponse", "EndMeetingResponse"}


def test_declared_statuses_are_exactly_the_route_s_answers_and_errors(doc):
    for route in ROUTES:
        responses = operation(doc, route.name)["responses"]
        expected = {route.status_code, *(a.status for a in route.also), *(e.status for e in errors_of(route))}
        assert {int(s) for s in responses} == expected, route.name
        if "422" in responses:  # only a route's own 422 (attachment_blocked); Powertools' validation 422 never
            assert "HTTPValidationError" not in json.dumps(responses["422"]), route.name


def test_every_error_response_is_the_one_error_schema_and_names_its_codes(doc):
    for route in ROUTES:
        for status, response in operation(doc, route.name)["responses"].items():
            if int(status) < 400:
                continue
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
            for error in errors_of(route):
                if error.status == int(status):
                    assert error.code in response["description"], (route.name, status, error.code)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_only_routes_calling_chime_s_meetings_api_declare_502(doc):
    assert "502" in operation(doc, "create_meeting")["responses"]
    assert "502" in operation(doc, "add_attendees")["responses"]
    assert "502" not in operation(doc, "get_meeting")["responses"]
    assert "502" not in operation(doc, "patient_audit_trail")["responses"]


def test_conflicts_and_gone_are_declared_where_they_happen(doc):
    assert "409" in operation(doc, "create_meeting")["responses"]  # create_in_progress, appointment_not_open
    assert "410" in operation(doc, "join_meeting")["responses"]  # meeting_ended
    assert "409" in operation(doc, "erase")["responses"]  # legal_hold
    assert "410" not in operation(doc, "get_meeting")["responses"]


def test_503_says_retry_after(doc):
    assert all(e.status != 503 or issubclass(e, ServiceUnavailable) for e in COMMON_ERRORS)
    for route in ROUTES:
        response = operation(doc, route.name)["responses"]["503"]
        assert "Retry-After" in response["headers"], route.name


def test_the_bearer_token_is_the_security_scheme_of_every_route(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["firebaseIdToken"] == {**schemes["firebaseIdToken"], "type": "http", "scheme": "bearer"}
    assert schemes["firebaseIdTokenHeader"]["name"] == "x-firebase-token"
    assert doc["security"] == [{"firebaseIdToken": []}, {"firebaseIdTokenHeader": []}]


def test_create_links_its_meeting_id_to_the_meeting_routes(doc):
    links = operation(doc, "create_meeting")["responses"]["201"]["links"]
    assert links["join_meeting"]["parameters"] == {"meetingId": "$response.body#/meeting/MeetingId"}
    assert {r.name for r in ROUTES if "{meetingId}" in r.path} == set(links)


# --- userIds: unique, and the server agrees ----------------------------------------------------------------
def test_batch_user_ids_are_declared_unique(doc):
    assert doc["components"]["schemas"]["AddAttendeesBody"]["properties"]["userIds"]["uniqueItems"] is True


def test_duplicate_user_ids_are_a_400_as_declared(api: Api, world: World):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    reply = api.post(
        f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id, world.nurse.id]},
        token=world.provider.token,
    )  # fmt: skip
    assert (reply.status, reply.code) == (400, "invalid_request")


# --- transcriptionLanguage: the 14 supported values ------------------------------------------------------
def test_transcription_language_is_an_enum_of_the_supported_ones(doc):
    schemas = doc["components"]["schemas"]
    assert schemas["CreateMeetingBody"]["properties"]["transcriptionLanguage"]["enum"] == list(TRANSCRIPTION_LANGUAGES)
    language = schemas["StartTranscriptionBody"]["properties"]["language"]["anyOf"][0]
    assert language["enum"] == list(TRANSCRIPTION_LANGUAGES)


def test_a_language_outside_the_enum_is_refused_even_without_transcription(api: Api, world: World):
    reply = api.post(
        "/meetings", {"appointmentId": "appt_123", "transcriptionLanguage": "es-ES"}, token=world.provider.token
    )
    assert (reply.status, reply.code) == (400, "unsupported_transcription_language")
    assert reply.body["error"]["details"]["supportedLanguages"] == list(TRANSCRIPTION_LANGUAGES)
    assert "es-ES" not in reply.body["error"]["message"]


def test_every_supported_language_is_accepted(api: Api, world: World):
    reply = api.post(
        "/meetings", {"appointmentId": "appt_123", "transcriptionLanguage": TRANSCRIPTION_LANGUAGES[-1]},
        token=world.provider.token,
    )  # fmt: skip
    assert reply.status == 201


# --- what the fuzzer found ---------------------------------------------------------------------------------
def test_a_literal_backslash_u0000_is_text_not_a_nul(api: Api, world: World):
    """The NUL check read the raw JSON: `\\\\u0000` (a backslash, then u0000) was refused as a NUL."""
    literal = api.post("/meetings", raw=json.dumps({"appointmentId": "appt_123", "note": "C:\\u0000"}),
                       token=world.provider.token)  # fmt: skip
    real = api.post("/meetings", raw=json.dumps({"appointmentId": "appt_123", "note": "a\u0000"}),
                    token=world.provider.token)  # fmt: skip
    escaped_backslash_then_nul = api.post(
        "/meetings", raw=json.dumps({"appointmentId": "appt_123", "note": "a\\\u0000"}), token=world.provider.token
    )
    assert literal.status == 201
    assert (real.status, real.code) == (400, "invalid_request")
    assert (escaped_backslash_then_nul.status, escaped_backslash_then_nul.code) == (400, "invalid_request")


def test_audit_trail_cursor_bound_is_exact_in_the_document(doc, api: Api, world: World, clean_db: str):
    """`le=2**63-1` became the float 9.223372036854776e18 (= 2**63) in the document: the fuzzer sent
    2**63 + 190 as valid and got a 400. The bound is now 2**53, which any JSON reader holds exactly."""
    import psycopg
    from conftest import add_user

    (before,) = [p for p in operation(doc, "patient_audit_trail")["parameters"] if p["name"] == "before"]
    assert before["schema"]["anyOf"][0]["maximum"] == 2**53
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin-openapi", "admin", "Admin")
    path = f"/admin/patients/{world.patient.id}/audit-trail?before="
    assert api.get(path + str(2**53), token=admin.token).status == 200
    assert api.get(path + str(2**53 + 1), token=admin.token).status == 400


def test_a_path_parameter_the_router_cannot_match_is_the_declared_404(doc, api: Api, world: World):
    reply = api.get("/appointments/\u0084/consent", token=world.patient.token)  # API Gateway passes it decoded
    assert (reply.status, reply.code) == (404, "route_not_found")
    assert "route_not_found" in operation(doc, "get_consent")["responses"]["404"]["description"]
