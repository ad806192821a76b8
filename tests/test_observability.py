"""A whole scenario's logs: JSON with correlation ids, business metrics as EMF, and no ID token,
JoinToken or name anywhere."""

from __future__ import annotations

import io
import json

import pytest
from conftest import Api, World, create_body


def run_scenario(api: Api, world: World) -> list[str]:
    """Everything the app does, good and bad; returns the secrets it handled."""
    secrets = [p.token for p in world.people]
    created = api.legacy(create_body(), token=world.provider.token).body
    meeting_id = created["meeting"]["MeetingId"]
    secrets.append(created["attendee"]["JoinToken"])
    joined = api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token).body
    secrets.append(joined["attendee"]["JoinToken"])
    batch = api.legacy(
        {"action": "batch-join", "meetingId": meeting_id, "userIds": [world.nurse.id, world.interpreter.id]},
        token=world.provider.token,
    ).body
    secrets += [a["attendee"]["JoinToken"] for a in batch["attendees"]]
    api.legacy({"action": "join", "meetingId": meeting_id}, token=world.outsider.token)
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.patient.token)
    api.legacy({"action": "create", "appointmentId": world.patient.name}, token=world.provider.token)
    api.legacy(create_body(), token=world.provider.token[:-5] + "xxxxx")
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.provider.token)
    # Recording: consent, start, stop, links (presigned URLs are credentials too), withdrawal.
    grant = {"recording": "granted", "transcription": "granted", "aiProcessing": "granted"}
    api.put("/appointments/appt_123/consent", grant, token=world.patient.token)
    body = {k: v for k, v in create_body().items() if k != "action"}
    meeting_id = api.post("/meetings", body, token=world.provider.token).body["meeting"]["MeetingId"]
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    page = api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token).body
    links = [a["downloadUrl"] for r in page["recordings"] for a in r["artifacts"]]
    assert links, "the scenario should have produced download links"
    secrets += [link.split("X-Amz-Signature=")[1][:40] for link in links]
    secrets += [link.split("?")[0].split("/recordings/", 1)[1] for link in links]  # object keys
    api.put("/appointments/appt_123/consent", {**grant, "recording": "refused"}, token=world.patient.token)
    return secrets


def test_no_token_join_token_or_name_in_any_log_line(
    api: Api, world: World, captured: io.StringIO, capfd: pytest.CaptureFixture[str]
):
    secrets = run_scenario(api, world)
    out, err = capfd.readouterr()
    logs = captured.getvalue() + out + err

    assert "meeting ready" in logs and "meeting ended" in logs, "the scenario should have been logged"
    assert "recording started" in logs and "pipeline event" in logs
    for secret in secrets:
        assert secret not in logs
        # JWT parts and JoinToken fragments leak too: check each token's payload half.
        assert secret[len(secret) // 2 : len(secret) // 2 + 24] not in logs
    for person in world.people:
        assert person.name not in logs
        for part in person.name.split():
            if len(part) > 3:
                assert part not in logs, part


def test_logs_are_json_with_a_correlation_id(api: Api, world: World, captured: io.StringIO):
    api.legacy(create_body(), token=world.provider.token)
    lines = [json.loads(line) for line in captured.getvalue().splitlines() if line.startswith("{")]
    logged = [line for line in lines if "message" in line]
    assert logged and all(line.get("correlation_id") for line in logged)


def test_business_metrics_are_emitted_as_emf(api: Api, world: World, capfd: pytest.CaptureFixture[str]):
    meeting_id = api.legacy(create_body(), token=world.provider.token).body["meeting"]["MeetingId"]
    api.legacy({"action": "join", "meetingId": meeting_id}, token=world.patient.token)
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.patient.token)
    api.legacy({"action": "end", "meetingId": meeting_id}, token=world.provider.token)

    blobs = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"MeetingsCreated", "Joins", "JoinLatency", "MeetingsEnded", "MeetingDuration", "Failures"} <= names
    assert all(d["Namespace"] == "Telehealth/VideoCall" for b in blobs for d in b["_aws"]["CloudWatchMetrics"])
    causes = {b.get("cause") for b in blobs if "Failures" in b}
    assert "denied_not_allowed_to_end" in causes
