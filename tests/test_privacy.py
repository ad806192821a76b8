"""Retention, the right of access, erasure and legal holds: nothing of the content is left behind (no
object version, no content row), the audit trail stays, and a legal hold stops deletion."""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import BUCKET, Api, LocalAws, Person, World, add_user, create_body, query
from handlers.apply_retention import handler as retention_handler
from test_recordings import consent, new_meeting, recordings
from videocall import cli
from videocall.local.server import LambdaContextStub


@pytest.fixture
def admin(clean_db: str) -> Person:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        return add_user(conn, "fb-dpo", "admin", "Data Protection Officer")


def held(**counts: int) -> dict[str, int]:
    """What an erasure reports deleted: every content kind, 0 unless given."""
    from videocall.runtime import runtime

    return {kind: counts.get(kind, 0) for kind in runtime().privacy.content_kinds}


def recorded(api: Api, world: World) -> str:
    """A completed recording of the appointment's meeting."""
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    return meeting_id


def overwrite_an_artifact(aws: LocalAws, prefix: str) -> None:
    """A second version of one object (the bucket is versioned): erasure must remove every version."""
    key = aws.objects(prefix)[0]
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"second version")


# --- erasure -----------------------------------------------------------------------------------------------
def test_erasure_of_an_appointment_leaves_no_version_and_no_content_row(
    api: Api, world: World, admin: Person, aws: LocalAws, clean_db: str
):
    recorded(api, world)
    prefix = "recordings/appt_123/"
    overwrite_an_artifact(aws, prefix)
    versions_before = aws.versions(prefix)
    audit_before = query(clean_db, "SELECT count(*) AS n FROM audit_events")[0]["n"]

    reply = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)

    assert reply.status == 200, reply.body
    # every content kind is listed (recordings, transcripts, messages, feedback, ...); only recordings held any
    assert {k: v for k, v in reply.body["deleted"].items() if v} == {"recordings": 1}
    assert {"recordings", "transcripts", "feedback"} <= set(reply.body["deleted"])
    assert {k: v for k, v in reply.body.items() if k != "deleted"} == {
        "appointmentIds": ["appt_123"], "pseudonymizedPatient": False, "nothingFound": False}  # fmt: skip
    assert versions_before > 5 and aws.versions(prefix) == 0
    assert query(clean_db, "SELECT count(*) AS n FROM recording_artifacts")[0]["n"] == 0
    assert [r["state"] for r in recordings(clean_db)] == ["deleted"]
    assert query(clean_db, "SELECT recording_url FROM video_call_sessions")[0]["recording_url"] is None
    assert query(clean_db, "SELECT erased_at FROM appointments WHERE id = 'appt_123'")[0]["erased_at"]
    audit_after = query(clean_db, "SELECT count(*) AS n FROM audit_events")[0]["n"]
    assert audit_after > audit_before  # kept, and added to
    (erase,) = query(
        clean_db, "SELECT actor_user_id::text AS actor, details FROM audit_events WHERE action = 'privacy.erase'"
    )
    assert erase["actor"] == admin.id and erase["details"]["deleted"] == reply.body["deleted"]


def test_a_second_erasure_finds_nothing_and_says_so(api: Api, world: World, admin: Person):
    recorded(api, world)
    api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    again = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    assert again.status == 200 and again.body["nothingFound"] is True and again.body["deleted"] == held()


def test_erasure_of_a_patient_pseudonymizes_them_and_keeps_the_audit_trail(
    api: Api, world: World, admin: Person, aws: LocalAws, clean_db: str
):
    recorded(api, world)

    reply = api.post("/admin/erasures", {"patientId": world.patient.id}, token=admin.token)

    assert reply.status == 200 and reply.body["pseudonymizedPatient"] is True
    (patient,) = query(clean_db, "SELECT display_name, firebase_uid, erased_at FROM users WHERE id = %s::uuid",
                       (world.patient.id,))  # fmt: skip
    assert patient["display_name"] == "erased" and patient["firebase_uid"] == f"erased:{world.patient.id}"
    assert world.patient.name not in json.dumps(query(clean_db, "SELECT * FROM users"), default=str)
    assert api.get("/appointments/appt_123/consent", token=world.patient.token).code == "user_not_registered"
    assert query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE patient_id = %s::uuid",
                 (world.patient.id,))[0]["n"] > 3  # fmt: skip
    assert aws.versions("recordings/") == 0


def test_a_legal_hold_refuses_erasure_and_retention(
    api: Api, world: World, admin: Person, aws: LocalAws, clean_db: str
):
    recorded(api, world)
    hold = api.put("/admin/appointments/appt_123/legal-hold", {"reference": "case 2026-114"}, token=admin.token)
    versions = aws.versions("recordings/")

    refused = api.post("/admin/erasures", {"patientId": world.patient.id}, token=admin.token)
    query(clean_db, "UPDATE recordings SET completed_at = now() - interval '400 days' RETURNING 1")
    kept = retention_handler({}, LambdaContextStub())

    assert hold.status == 200 and hold.body["held"] is True and hold.body["placedBy"] == admin.id
    assert (refused.status, refused.code) == (409, "legal_hold")
    assert refused.body["error"]["details"] == {"heldAppointmentIds": ["appt_123"]}
    assert kept["recordings"] == 0 and aws.versions("recordings/") == versions

    lifted = api.delete("/admin/appointments/appt_123/legal-hold", token=admin.token)
    expired = retention_handler({}, LambdaContextStub())

    assert lifted.body == {"appointmentId": "appt_123", "held": False}
    assert expired["recordings"] == 1 and aws.versions("recordings/") == 0
    assert [r["state"] for r in recordings(clean_db)] == ["deleted"]


def test_retention_keeps_what_is_younger_than_the_setting(api: Api, world: World, aws: LocalAws, clean_db: str):
    recorded(api, world)
    query(clean_db, "UPDATE recordings SET completed_at = now() - interval '89 days' RETURNING 1")
    assert retention_handler({}, LambdaContextStub())["recordings"] == 0
    query(clean_db, "UPDATE recordings SET completed_at = now() - interval '91 days' RETURNING 1")
    assert retention_handler({}, LambdaContextStub())["recordings"] == 1
    assert aws.versions("recordings/") == 0


# --- right of access ---------------------------------------------------------------------------------------
def test_export_is_one_document_of_everything_held_about_the_patient(
    api: Api, world: World, admin: Person, clean_db: str
):
    meeting_id = recorded(api, world)

    reply = api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token)

    assert reply.status == 200, reply.body
    doc = reply.body
    assert doc["patient"]["id"] == world.patient.id and doc["patient"]["displayName"] == world.patient.name
    assert [a["id"] for a in doc["appointments"]] == ["appt_123"]
    assert [m["meetingId"] for m in doc["meetings"]] == [meeting_id]
    assert doc["consent"][0]["recording"] == "granted"
    (rec,) = doc["content"]["recordings"]
    assert rec["state"] == "completed" and all(a["downloadUrl"] for a in rec["artifacts"])
    actions = {e["action"] for e in doc["auditTrail"]}
    assert {"consent.update", "meeting.create", "recording.start", "recording.completed"} <= actions
    assert query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'privacy.export'")[0]["n"] == 1


def test_audit_trail_for_the_data_protection_officer_pages_newest_first(api: Api, world: World, admin: Person):
    recorded(api, world)
    first = api.get(f"/admin/patients/{world.patient.id}/audit-trail?limit=3", token=admin.token).body
    older = api.get(f"/admin/patients/{world.patient.id}/audit-trail?limit=3&before={first['nextBefore']}",
                    token=admin.token).body  # fmt: skip
    ids = [e["id"] for e in first["events"]] + [e["id"] for e in older["events"]]
    assert len(first["events"]) == 3 and ids == sorted(ids, reverse=True) and len(set(ids)) == 6


# --- who may --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["provider", "patient", "outsider"])
def test_privacy_routes_are_admin_only(api: Api, world: World, admin: Person, who: str):
    token = getattr(world, who).token
    patient = world.patient.id
    for reply in (
        api.get(f"/admin/patients/{patient}/export", token=token),
        api.get(f"/admin/patients/{patient}/audit-trail", token=token),
        api.post("/admin/erasures", {"patientId": patient}, token=token),
        api.put("/admin/appointments/appt_123/legal-hold", {"reference": "x"}, token=token),
        api.delete("/admin/appointments/appt_123/legal-hold", token=token),
    ):
        assert (reply.status, reply.code) == (403, "admin_only")


def test_privacy_bad_input(api: Api, world: World, admin: Person):
    both = api.post("/admin/erasures", {"patientId": world.patient.id, "appointmentId": "appt_123"}, token=admin.token)
    neither = api.post("/admin/erasures", {}, token=admin.token)
    not_a_patient = api.get(f"/admin/patients/{world.provider.id}/export", token=admin.token)
    unknown_appointment = api.post("/admin/erasures", {"appointmentId": "appt_nope"}, token=admin.token)
    bad_id = api.get("/admin/patients/not-a-uuid/export", token=admin.token)
    assert (both.status, neither.status) == (400, 400)
    assert (not_a_patient.status, not_a_patient.code) == (404, "patient_not_found")
    assert (unknown_appointment.status, unknown_appointment.code) == (404, "appointment_not_found")
    assert bad_id.status == 400


# --- the command line ------------------------------------------------------------------------------------
def test_the_privacy_command_erases_and_exports_like_the_routes(
    api: Api, world: World, admin: Person, aws: LocalAws, capsys
):
    recorded(api, world)
    capsys.readouterr()

    assert cli.main(["privacy", "export", "--patient", world.patient.id, "--admin", admin.firebase_uid]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["content"]["recordings"][0]["state"] == "completed"
    assert cli.main(["privacy", "erase", "--appointment", "appt_123", "--admin", admin.firebase_uid]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == held(recordings=1)
    assert cli.main(["privacy", "erase", "--appointment", "appt_123", "--admin", admin.firebase_uid]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["nothingFound"] is True and "nothing left to erase" in out.err
    assert cli.main(["privacy", "erase", "--appointment", "appt_123", "--admin", world.provider.firebase_uid]) == 2
    assert "admin_only" in capsys.readouterr().err
    assert aws.versions("recordings/") == 0


def test_erasure_waits_for_the_meeting_and_its_recording_to_end(api: Api, world: World, admin: Person, aws: LocalAws):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    refused = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    erased = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)

    assert (refused.status, refused.code) == (409, "meeting_in_progress")
    assert refused.body["error"]["details"] == {"liveAppointmentIds": ["appt_123"]}
    assert erased.status == 200 and erased.body["deleted"] == held(recordings=1) and aws.versions("recordings/") == 0


def test_erasure_refuses_while_a_concatenation_is_still_to_write(
    api: Api, world: World, admin: Person, aws: LocalAws, clean_db: str
):
    recorded(api, world)
    query(clean_db, "UPDATE recordings SET state = 'processing' RETURNING 1")  # its files not landed yet
    reply = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)
    assert (reply.status, reply.code) == (409, "recording_in_progress")
    assert aws.versions("recordings/") > 0  # nothing deleted


def test_after_erasure_the_appointment_takes_no_new_meeting_or_hold_and_consent_is_asked_anew(
    api: Api, world: World, admin: Person, clean_db: str
):
    recorded(api, world)
    api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token)

    body = {k: v for k, v in create_body().items() if k != "action"}
    create = api.post("/meetings", body, token=world.provider.token)
    consent_now = api.get("/appointments/appt_123/consent", token=world.provider.token)
    hold = api.put("/admin/appointments/appt_123/legal-hold", {"reference": "late"}, token=admin.token)

    assert (create.status, create.code) == (409, "appointment_not_open")
    assert consent_now.body["recording"] == "not_given"
    assert (hold.status, hold.code) == (409, "appointment_erased")
    (erase,) = query(clean_db, "SELECT details FROM audit_events WHERE action = 'privacy.erase'")
    assert erase["details"]["consent_reset"] == 1


def test_export_links_are_each_an_audit_event(api: Api, world: World, admin: Person, clean_db: str):
    recorded(api, world)
    doc = api.get(f"/admin/patients/{world.patient.id}/export", token=admin.token).body
    links = [a for r in doc["content"]["recordings"] for a in r["artifacts"]]
    issued = query(clean_db, "SELECT actor_user_id::text AS who, details FROM audit_events"
                             " WHERE action = 'recording.download_link'")  # fmt: skip
    assert len(issued) == len(links) == 5 and {i["who"] for i in issued} == {admin.id}
    assert all(i["details"]["via"] == "export" for i in issued)
