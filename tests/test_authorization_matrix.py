"""Every route this issue added, for every kind of caller: the appointment's provider, its patient,
another appointment's patient, an admin, and nobody. The matrix is the README's "Who may do what"."""

from __future__ import annotations

import psycopg
import pytest
from conftest import Api, World, add_appointment, add_user, create_body
from test_recordings import GRANTED

WHO = ("provider", "patient", "other_patient", "admin", "nobody")

# route -> expected (status, code) per caller, in WHO's order; None code = success
MATRIX: dict[str, tuple[tuple[int, str | None], ...]] = {
    "start_recording": ((200, None), (403, "not_a_clinical_controller"), (404, "meeting_not_found"),
                        (404, "meeting_not_found"), (401, "token_missing")),
    "stop_recording": ((200, None), (403, "not_a_clinical_controller"), (404, "meeting_not_found"),
                       (404, "meeting_not_found"), (401, "token_missing")),
    "get_recordings": ((200, None), (200, None), (404, "meeting_not_found"), (404, "meeting_not_found"),
                       (401, "token_missing")),
    "start_transcription": ((200, None), (403, "not_a_clinical_controller"), (404, "meeting_not_found"),
                            (404, "meeting_not_found"), (401, "token_missing")),
    "stop_transcription": ((200, None), (403, "not_a_clinical_controller"), (404, "meeting_not_found"),
                           (404, "meeting_not_found"), (401, "token_missing")),
    # the transcript is for clinical staff (the patient only by setting): others answer as outsiders
    "get_transcript": ((200, None), (404, "meeting_not_found"), (404, "meeting_not_found"),
                       (404, "meeting_not_found"), (401, "token_missing")),
    # the provider passes and meets the next rule: there is no draft to review yet
    "review_summary": ((400, "invalid_request"), (403, "not_a_clinical_controller"), (404, "meeting_not_found"),
                       (404, "meeting_not_found"), (401, "token_missing")),
    "put_consent": ((403, "not_allowed_to_record_consent"), (200, None), (403, "not_a_participant"),
                    (403, "not_a_participant"), (401, "token_missing")),
    "get_consent": ((200, None), (200, None), (403, "not_a_participant"), (403, "not_a_participant"),
                    (401, "token_missing")),
    "export_patient": ((403, "admin_only"),) * 3 + ((200, None), (401, "token_missing")),
    "patient_audit_trail": ((403, "admin_only"),) * 3 + ((200, None), (401, "token_missing")),
    "place_legal_hold": ((403, "admin_only"),) * 3 + ((200, None), (401, "token_missing")),
    "lift_legal_hold": ((403, "admin_only"),) * 3 + ((200, None), (401, "token_missing")),
    # the admin passes authorization and meets the next rule: the appointment's meeting is live
    "erase": ((403, "admin_only"),) * 3 + ((409, "meeting_in_progress"), (401, "token_missing")),
}  # fmt: skip


@pytest.fixture
def tokens(world: World, clean_db: str) -> dict[str, str | None]:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
        add_appointment(conn, "appt_other", world.provider, world.outsider)
    return {"provider": world.provider.token, "patient": world.patient.token, "other_patient": world.outsider.token,
            "admin": admin.token, "nobody": None}  # fmt: skip


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_every_new_route_answers_each_caller_as_the_rules_say(api: Api, world: World, tokens, route: str):
    api.put("/appointments/appt_123/consent", GRANTED, token=world.patient.token)
    body = {k: v for k, v in create_body(enableRecording=False).items() if k != "action"}
    meeting_id = api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    calls = {
        "start_recording": lambda t: api.post(f"/meetings/{meeting_id}/recording", token=t),
        "stop_recording": lambda t: api.delete(f"/meetings/{meeting_id}/recording", token=t),
        "get_recordings": lambda t: api.get(f"/meetings/{meeting_id}/recording", token=t),
        "start_transcription": lambda t: api.post(f"/meetings/{meeting_id}/transcription", token=t),
        "stop_transcription": lambda t: api.delete(f"/meetings/{meeting_id}/transcription", token=t),
        "get_transcript": lambda t: api.get(f"/meetings/{meeting_id}/transcript", token=t),
        "review_summary": lambda t: api.post(f"/meetings/{meeting_id}/transcript/summary/review", token=t),
        "put_consent": lambda t: api.put("/appointments/appt_123/consent", GRANTED, token=t),
        "get_consent": lambda t: api.get("/appointments/appt_123/consent", token=t),
        "export_patient": lambda t: api.get(f"/admin/patients/{world.patient.id}/export", token=t),
        "patient_audit_trail": lambda t: api.get(f"/admin/patients/{world.patient.id}/audit-trail", token=t),
        "place_legal_hold": lambda t: api.put("/admin/appointments/appt_123/legal-hold", {"reference": "r"}, token=t),
        "lift_legal_hold": lambda t: api.delete("/admin/appointments/appt_123/legal-hold", token=t),
        "erase": lambda t: api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=t),
    }
    for who, (status, code) in zip(WHO, MATRIX[route], strict=True):
        reply = calls[route](tokens[who])
        assert (reply.status, reply.code) == (status, code), f"{route} as {who}: {reply.body}"


def test_the_matrix_covers_every_route_beyond_the_meeting_api():
    from videocall.meetings.routes import ROUTES as MEETING_ROUTES
    from videocall.routes import ROUTES

    assert {r.name for r in ROUTES} - {r.name for r in MEETING_ROUTES} == set(MATRIX)
