"""Recording end to end: consent, who controls a call, capture + concatenation into the KMS-encrypted
bucket (moto), Chime's pipeline events (the emulator's, through the same handlers), artifacts, links."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import BUCKET, BUS, SINK_ROLE, Api, LocalAws, World, create_body, query
from handlers.chime_pipeline_events import handler as pipeline_events
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.pipelines_emulator import MediaPipelinesEmulator
from videocall.local.server import LambdaContextStub
from videocall.runtime import Runtime

GRANTED = {"recording": "granted", "transcription": "granted", "aiProcessing": "granted"}
REFUSED = {"recording": "refused", "transcription": "refused", "aiProcessing": "refused"}


def consent(api: Api, world: World, decisions: dict[str, str] = GRANTED, appointment: str = "appt_123") -> Any:
    reply = api.put(f"/appointments/{appointment}/consent", decisions, token=world.patient.token)
    assert reply.status == 200, reply.body
    return reply.body


def new_meeting(api: Api, world: World, *, recording: bool = False) -> str:
    body = {k: v for k, v in create_body(enableRecording=recording, enableTranscription=False).items() if k != "action"}
    reply = api.post("/meetings", body, token=world.provider.token)
    assert reply.status in (200, 201), reply.body
    return reply.body["meeting"]["MeetingId"]


def recordings(clean_db: str) -> list[dict[str, Any]]:
    return query(clean_db, "SELECT sequence, state, client_request_token, s3_prefix, capture_pipeline_id,"
                           " concatenation_pipeline_id, stop_reason, error_message FROM recordings ORDER BY sequence")  # fmt: skip


def session(clean_db: str) -> dict[str, Any]:
    return query(clean_db, "SELECT * FROM video_call_sessions ORDER BY created_at DESC LIMIT 1")[0]


# --- consent -----------------------------------------------------------------------------------------
def test_start_without_consent_is_409_and_nothing_is_captured(api: Api, world: World, pipelines, clean_db: str):
    meeting_id = new_meeting(api, world)

    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert (reply.status, reply.code) == (409, "consent_required")
    assert recordings(clean_db) == [] and pipelines.events == []


def test_refused_consent_is_409_too(api: Api, world: World, clean_db: str):
    consent(api, world, REFUSED)
    meeting_id = new_meeting(api, world)
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).code == "consent_required"


def test_consent_is_recorded_by_the_patient_shown_to_participants_and_audited(api: Api, world: World, clean_db: str):
    body = consent(api, world, {"recording": "granted", "transcription": "refused", "aiProcessing": "granted"})
    seen_by_provider = api.get("/appointments/appt_123/consent", token=world.provider.token)
    by_provider = api.put("/appointments/appt_123/consent", GRANTED, token=world.provider.token)
    by_outsider = api.get("/appointments/appt_123/consent", token=world.outsider.token)

    assert (body["recording"], body["transcription"], body["aiProcessing"], body["source"]) == (
        "granted", "refused", "granted", "patient")  # fmt: skip
    assert body["recordedBy"] == world.patient.id and body["updatedAt"]
    assert seen_by_provider.status == 200 and seen_by_provider.body["transcription"] == "refused"
    assert (by_provider.status, by_provider.code) == (403, "not_allowed_to_record_consent")
    assert (by_outsider.status, by_outsider.code) == (403, "not_a_participant")
    events = query(clean_db, "SELECT actor_user_id::text AS actor, outcome, details FROM audit_events"
                             " WHERE action = 'consent.update' ORDER BY id")  # fmt: skip
    assert [(e["actor"], e["outcome"]) for e in events] == [
        (world.patient.id, "allowed"),
        (world.provider.id, "denied"),
    ]
    assert events[0]["details"]["transcription"] == "refused"


def test_consent_not_given_yet_reads_as_not_given(api: Api, world: World):
    body = api.get("/appointments/appt_123/consent", token=world.patient.token).body
    assert (body["recording"], body["source"]) == ("not_given", None)


def test_consent_gathered_outside_is_recorded_by_the_provider(api: Api, world: World, runtime: Runtime, monkeypatch):
    monkeypatch.setattr(runtime.consent, "_source", "external")

    by_patient = api.put("/appointments/appt_123/consent", GRANTED, token=world.patient.token)
    by_provider = api.put("/appointments/appt_123/consent", GRANTED, token=world.provider.token)

    assert (by_patient.status, by_patient.code) == (403, "not_allowed_to_record_consent")
    assert by_provider.status == 200 and by_provider.body["source"] == "external"


def test_bad_consent_bodies_are_400(api: Api, world: World):
    for body in ({"recording": "yes", "transcription": "granted", "aiProcessing": "granted"}, {"recording": "granted"},
                 {"recording": True, "transcription": "granted", "aiProcessing": "granted"}):  # fmt: skip
        reply = api.put("/appointments/appt_123/consent", body, token=world.patient.token)
        assert (reply.status, reply.code) == (400, "invalid_request"), body


# --- starting and stopping -----------------------------------------------------------------------------
def test_start_captures_into_the_meetings_prefix_with_the_customer_key(
    api: Api, world: World, pipelines: MediaPipelinesEmulator, aws: LocalAws, clean_db: str
):
    consent(api, world)
    meeting_id = new_meeting(api, world)

    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert reply.status == 200, reply.body
    assert reply.body["recordingState"] == "on" and reply.body["recording"]["sequence"] == 1
    (rec,) = recordings(clean_db)
    assert rec["client_request_token"] == f"{meeting_id}-r1"
    assert rec["s3_prefix"] == f"recordings/appt_123/{meeting_id}/r1"
    capture = pipelines.get_media_pipeline(MediaPipelineId=rec["capture_pipeline_id"])["MediaPipeline"][
        "MediaCapturePipeline"]  # fmt: skip
    assert capture["SinkArn"] == f"arn:aws:s3:::{BUCKET}/recordings/appt_123/{meeting_id}/r1/capture"
    assert capture["SourceArn"] == f"arn:aws:chime::111122223333:meeting:{meeting_id}"
    assert capture["SseAwsKeyManagementParams"] == {"AwsKmsKeyId": aws.key_arn}
    assert capture["SinkIamRoleArn"] == SINK_ROLE
    artifacts = capture["ChimeSdkMeetingConfiguration"]["ArtifactsConfiguration"]
    assert artifacts["Audio"]["MuxType"] == "AudioWithCompositedVideo"
    assert artifacts["Content"]["State"] == "Enabled" and artifacts["Video"]["State"] == "Disabled"
    chunk = aws.objects(f"{rec['s3_prefix']}/capture/audio/")[0]
    head = aws.s3.head_object(Bucket=BUCKET, Key=chunk)
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == aws.key_arn
    assert session(clean_db)["recording_state"] == "on"
    state = api.get(f"/meetings/{meeting_id}", token=world.patient.token).body
    assert state["recordingState"] == "on"  # every participant's app can show it


def test_starting_twice_returns_the_running_recording(api: Api, world: World, pipelines, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    first = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).body
    again = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).body

    assert again["recording"]["recordingId"] == first["recording"]["recordingId"]
    assert len(recordings(clean_db)) == 1
    assert len([e for e in pipelines.events if e["detail"]["eventType"] == "chime:MediaPipelineInProgress"]) == 1


def test_stop_then_concatenation_lands_and_the_recording_completes(
    api: Api, world: World, aws: LocalAws, clean_db: str
):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    stopped = api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    again = api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert stopped.status == 200 and stopped.body["recordingState"] == "off"
    assert again.status == 200 and again.body["recording"]["state"] == "completed"  # a no-op
    (rec,) = recordings(clean_db)
    assert (rec["state"], rec["stop_reason"]) == ("completed", "stopped")
    kinds = {r["kind"] for r in query(clean_db, "SELECT kind FROM recording_artifacts")}
    assert kinds == {"audio", "composited-video", "content", "data-channel", "meeting-events"}
    keys = {r["s3_key"] for r in query(clean_db, "SELECT s3_key FROM recording_artifacts")}
    assert keys == set(aws.objects(f"{rec['s3_prefix']}/concatenated/"))  # listed, not guessed
    row = session(clean_db)
    assert row["recording_url"] == f"s3://{BUCKET}/{rec['s3_prefix']}/" and row["recording_completed_at"]
    audio = query(clean_db, "SELECT duration_ms, size_bytes FROM recording_artifacts WHERE kind = 'audio'")[0]
    assert audio["duration_ms"] is not None and audio["size_bytes"] > 0


def test_start_stop_start_makes_two_recordings_with_their_own_tokens(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    second = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert second.body["recording"]["sequence"] == 2
    tokens = [r["client_request_token"] for r in recordings(clean_db)]
    assert tokens == [f"{meeting_id}-r1", f"{meeting_id}-r2"]
    assert [r["state"] for r in recordings(clean_db)] == ["completed", "recording"]


def test_ending_the_meeting_stops_the_recording_and_it_completes(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)

    (rec,) = recordings(clean_db)
    assert rec["state"] == "completed" and rec["stop_reason"] == "meeting_ended"
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).code == "meeting_ended"


def test_create_with_recording_starts_it_when_consent_allows(api: Api, world: World, clean_db: str):
    consent(api, world)
    body = {k: v for k, v in create_body(enableTranscription=False).items() if k != "action"}
    reply = api.post("/meetings", body, token=world.provider.token)
    assert reply.status == 201 and reply.body["recording"] == {"state": "on", "reason": None}
    assert [r["state"] for r in recordings(clean_db)] == ["recording"]


def test_create_with_recording_waits_for_consent_then_starts_when_granted(api: Api, world: World, clean_db: str):
    body = {k: v for k, v in create_body(enableTranscription=False).items() if k != "action"}
    reply = api.post("/meetings", body, token=world.provider.token)
    meeting_id = reply.body["meeting"]["MeetingId"]

    assert reply.status == 201 and reply.body["recording"] == {
        "state": "waiting_for_consent",
        "reason": "consent_required",
    }
    assert api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"] == "waiting_for_consent"
    assert recordings(clean_db) == []

    granted = consent(api, world)

    assert granted["recordingsStarted"] == 1
    assert api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"] == "on"
    started_by = query(clean_db, "SELECT started_by::text AS who FROM recordings")[0]["who"]
    assert started_by == world.provider.id


def test_a_patient_creating_with_recording_does_not_start_it(api: Api, world: World, clean_db: str):
    consent(api, world)
    body = {k: v for k, v in create_body(enableTranscription=False).items() if k != "action"}
    reply = api.post("/meetings", body, token=world.patient.token)
    assert reply.status == 201 and reply.body["recording"] == {"state": "off", "reason": "clinician_only"}
    assert recordings(clean_db) == []


def test_legacy_create_with_recording_keeps_the_old_shape_and_records(api: Api, world: World, clean_db: str):
    consent(api, world)
    reply = api.legacy(create_body(enableTranscription=False), token=world.provider.token)
    assert list(reply.body) == ["meeting", "attendee", "recordingEnabled", "transcriptionEnabled"]
    assert [r["state"] for r in recordings(clean_db)] == ["recording"]


def test_withdrawing_consent_mid_call_stops_the_recording(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    withdrawn = consent(api, world, REFUSED)

    assert withdrawn["recordingsStopped"] == 1
    (rec,) = recordings(clean_db)
    assert rec["stop_reason"] == "consent_withdrawn" and rec["state"] == "completed"
    assert api.get(f"/meetings/{meeting_id}", token=world.provider.token).body["recordingState"] == "off"
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).code == "consent_required"
    stop = query(clean_db, "SELECT actor_user_id::text AS actor FROM audit_events WHERE action = 'recording.stop'")
    assert [s["actor"] for s in stop] == [world.patient.id]


# --- who controls a call -----------------------------------------------------------------------------
def test_only_clinical_staff_control_recording(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)

    patient = api.post(f"/meetings/{meeting_id}/recording", token=world.patient.token)
    outsider = api.post(f"/meetings/{meeting_id}/recording", token=world.outsider.token)
    nurse = api.post(f"/meetings/{meeting_id}/recording", token=world.nurse.token)
    patient_stop = api.delete(f"/meetings/{meeting_id}/recording", token=world.patient.token)

    assert (patient.status, patient.code) == (403, "not_a_clinical_controller")
    assert (outsider.status, outsider.code) == (404, "meeting_not_found")
    assert nurse.status == 200 and nurse.body["recordingState"] == "on"  # staff the provider added
    assert (patient_stop.status, patient_stop.code) == (403, "not_a_clinical_controller")
    denied = query(
        clean_db, "SELECT count(*) AS n FROM audit_events WHERE action LIKE 'recording.%' AND outcome = 'denied'"
    )
    assert denied[0]["n"] == 3


def test_a_patient_who_created_the_meeting_cannot_add_attendees(api: Api, world: World):
    meeting_id = api.legacy(create_body(enableRecording=False), token=world.patient.token).body["meeting"]["MeetingId"]
    reply = api.post(
        f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.patient.token
    )
    assert (reply.status, reply.code) == (403, "not_allowed_to_add_attendees")


def test_staff_added_by_a_patient_never_control_the_call(api: Api, world: World, clean_db: str):
    """Only staff the *provider* added are clinical controllers (defence in depth: patients cannot add)."""
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.interpreter.id]}, token=world.provider.token)
    # The interpreter (provider role) was added by the provider: may control. Simulate one added by the patient:
    query(clean_db, "UPDATE meeting_attendees SET added_by = %s::uuid WHERE user_id = %s::uuid RETURNING 1",
          (world.patient.id, world.interpreter.id))  # fmt: skip
    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.interpreter.token)
    assert (reply.status, reply.code) == (403, "not_a_clinical_controller")


# --- failures ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("ResourceLimitExceededException", 409, "recording_limit_reached"),
     ("ForbiddenException", 503, "recording_unavailable"),
     ("ServiceUnavailableException", 503, "recording_unavailable")],
)  # fmt: skip
def test_chime_refusing_the_pipeline_is_a_clear_answer_and_the_meeting_goes_on(
    api: Api, world: World, pipelines: MediaPipelinesEmulator, clean_db: str, code: str, status: int, error: str
):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    pipelines.fail_next["CreateMediaCapturePipeline"] = [code]

    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert (reply.status, reply.code) == (status, error)
    if status == 503:
        assert reply.headers["Retry-After"]
    (rec,) = recordings(clean_db)
    assert rec["state"] == "failed" and rec["error_message"] == f"pipeline create failed: {error}"
    row = session(clean_db)
    assert row["error_message"] and row["error_occurred_at"] and row["recording_state"] == "off"
    assert api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token).status == 200
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).status == 200  # next try works


def test_throttling_is_retried(api: Api, world: World, pipelines: MediaPipelinesEmulator):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    pipelines.fail_next["CreateMediaCapturePipeline"] = ["ThrottledClientException", "ThrottledClientException"]
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).status == 200


def test_concatenation_refused_stops_the_capture_it_made(api: Api, world: World, pipelines, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    pipelines.fail_next["CreateMediaConcatenationPipeline"] = ["ForbiddenException"]

    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert reply.code == "recording_unavailable"
    capture_id = next(e["detail"]["mediaPipelineId"] for e in pipelines.events)
    status = pipelines.get_media_pipeline(MediaPipelineId=capture_id)["MediaPipeline"]["MediaCapturePipeline"]
    assert status["Status"] == "Stopped"


def test_recording_an_ended_meeting_is_410(api: Api, world: World):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)
    assert api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token).status == 410


# --- pipeline events ---------------------------------------------------------------------------------
def pipeline_event(event_type: str, pipeline_id: str, at_ms: int, event_id: str) -> dict[str, Any]:
    return {
        "version": "0", "id": event_id, "detail-type": "Chime Media Pipeline State Change", "source": "aws.chime",
        "account": "111122223333", "time": "2026-11-26T10:00:00Z", "region": "eu-central-1", "resources": [],
        "detail": {"version": "0", "eventType": event_type, "timestamp": at_ms, "meetingId": "m",
                   "mediaPipelineId": pipeline_id, "mediaRegion": "eu-central-1"},
    }  # fmt: skip


def started(api: Api, world: World, clean_db: str) -> tuple[str, str]:
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    return meeting_id, recordings(clean_db)[0]["capture_pipeline_id"]


def send(event: dict[str, Any]) -> dict[str, Any]:
    return pipeline_events(event, LambdaContextStub())


def test_temporary_failure_then_resume_shows_interrupted_then_on(api: Api, world: World, clean_db: str):
    meeting_id, capture = started(api, world, clean_db)
    base = 1_800_000_000_000

    send(pipeline_event("chime:MediaPipelineTemporaryFailure", capture, base, "e1"))
    interrupted = api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"]
    send(pipeline_event("chime:MediaPipelineResumed", capture, base + 1000, "e2"))

    assert interrupted == "interrupted"
    assert api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"] == "on"


def test_reordered_and_repeated_events_give_the_same_end_state(api: Api, world: World, clean_db: str):
    _meeting_id, capture = started(api, world, clean_db)
    base = 1_800_000_000_000

    send(pipeline_event("chime:MediaPipelineResumed", capture, base + 1000, "e2"))  # arrives first
    late = send(pipeline_event("chime:MediaPipelineTemporaryFailure", capture, base, "e1"))  # older: ignored
    send(pipeline_event("chime:MediaPipelineTemporaryFailure", capture, base + 2000, "e3"))
    repeat = send(pipeline_event("chime:MediaPipelineResumed", capture, base + 1000, "e2"))  # same id again

    assert late["outcome"] == "unchanged" and repeat["outcome"] == "unchanged"
    assert recordings(clean_db)[0]["state"] == "interrupted"


def test_permanent_failure_fails_the_recording_and_counts(api: Api, world: World, clean_db: str, capsys):
    meeting_id, capture = started(api, world, clean_db)
    capsys.readouterr()

    outcome = send(pipeline_event("chime:MediaPipelinePermanentFailure", capture, 1_800_000_000_000, "pf"))
    resumed = send(pipeline_event("chime:MediaPipelineResumed", capture, 1_800_000_009_000, "late"))

    assert outcome["outcome"] == "failed" and resumed["outcome"] == "unchanged"  # never revived
    rec = query(clean_db, "SELECT state, error_message, error_occurred_at FROM recordings")[0]
    assert rec["state"] == "failed" and rec["error_message"] and rec["error_occurred_at"]
    assert '"RecordingFailures"' in capsys.readouterr().out  # the metric the alarm watches
    assert api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"] == "off"


def test_events_for_unknown_pipelines_are_dropped(api: Api, world: World):
    outcome = send(pipeline_event("chime:MediaPipelineInProgress", "00000000-0000-0000-0000-000000000000", 1, "x"))
    assert outcome["outcome"] == "unknown_pipeline"


def test_concatenation_event_without_files_yet_waits(api: Api, world: World, clean_db: str, aws: LocalAws):
    meeting_id, _capture = started(api, world, clean_db)
    concat = recordings(clean_db)[0]["concatenation_pipeline_id"]
    api.deliver_events = False
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    BUS.clear()  # lose the emulator's events: nothing was concatenated yet
    for key in aws.objects(recordings(clean_db)[0]["s3_prefix"] + "/concatenated/"):
        aws.s3.delete_object(Bucket=BUCKET, Key=key)

    outcome = send(pipeline_event("chime:MediaPipelineDeleted", concat, 1_800_000_000_000, "c1"))

    assert outcome["outcome"] == "waiting_for_artifacts"
    assert recordings(clean_db)[0]["state"] == "processing"


# --- the recording's page, with links ------------------------------------------------------------------
def test_provider_gets_expiring_attachment_links_and_each_is_audited(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    provider = api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    patient = api.get(f"/meetings/{meeting_id}/recording", token=world.patient.token)
    outsider = api.get(f"/meetings/{meeting_id}/recording", token=world.outsider.token)

    assert provider.status == 200 and provider.body["linksExpireInSeconds"] == 900
    (rec,) = provider.body["recordings"]
    links = [a["downloadUrl"] for a in rec["artifacts"]]
    assert len(links) == 5 and all(links)
    query_string = parse_qs(urlsplit(links[0]).query)
    assert query_string["X-Amz-Expires"] == ["900"]
    assert query_string["response-content-disposition"][0].startswith("attachment;")
    assert patient.status == 200 and all("downloadUrl" not in a for a in patient.body["recordings"][0]["artifacts"])
    assert (outsider.status, outsider.code) == (404, "meeting_not_found")
    issued = query(clean_db, "SELECT actor_user_id::text AS who, details FROM audit_events"
                             " WHERE action = 'recording.download_link'")  # fmt: skip
    assert len(issued) == 5 and {i["who"] for i in issued} == {world.provider.id}


def test_patient_links_when_the_setting_allows(api: Api, world: World, runtime: Runtime, monkeypatch):
    monkeypatch.setattr(runtime.recordings, "_links_for_patient", True)
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    body = api.get(f"/meetings/{meeting_id}/recording", token=world.patient.token).body
    assert all(a["downloadUrl"] for a in body["recordings"][0]["artifacts"])


def test_no_object_key_or_link_reaches_the_logs(api: Api, world: World, capsys, clean_db: str):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    body = api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token).body
    out = capsys.readouterr().out + capsys.readouterr().err
    assert "X-Amz-Signature" not in out and "concatenated/" not in out and "capture/" not in out
    assert body["recordings"][0]["artifacts"][0]["downloadUrl"].split("?")[0] not in out


def test_individual_streams_setting_captures_each_attendees_video(
    api: Api, world: World, runtime: Runtime, pipelines: MediaPipelinesEmulator, clean_db: str, monkeypatch
):
    from videocall.recordings.pipelines import CaptureSettings

    monkeypatch.setattr(runtime.pipelines, "_capture", CaptureSettings(individual_video=True))
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    capture_id = recordings(clean_db)[0]["capture_pipeline_id"]
    capture = pipelines.get_media_pipeline(MediaPipelineId=capture_id)["MediaPipeline"]["MediaCapturePipeline"]
    assert capture["ChimeSdkMeetingConfiguration"]["ArtifactsConfiguration"]["Video"] == {
        "State": "Enabled", "MuxType": "VideoOnly"}  # fmt: skip


def test_emulator_meeting_events_reach_the_same_handler(api: Api, world: World, emulator: ChimeEmulator):
    new_meeting(api, world)
    handled = [result for event, result in BUS.delivered if event["detail-type"] == "Chime Meeting State Change"]
    assert handled and handled[0] == {"handled": "chime:MeetingStarted", "rang": 1}  # the patient is rung


def test_consent_withdrawn_while_the_pipelines_are_created_stops_the_recording(
    api: Api, world: World, pipelines: MediaPipelinesEmulator, clean_db: str, monkeypatch
):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    original = pipelines.create_media_concatenation_pipeline

    def withdrawn_meanwhile(**params):
        # The patient's PUT (another function) commits between the claim and the activation; it found
        # the recording still starting, with no pipeline to stop.
        query(clean_db, "UPDATE appointment_consents SET recording = 'refused' RETURNING 1")
        return original(**params)

    monkeypatch.setattr(pipelines, "create_media_concatenation_pipeline", withdrawn_meanwhile)

    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert (reply.status, reply.code) == (409, "consent_required")
    (rec,) = recordings(clean_db)
    assert rec["stop_reason"] == "consent_withdrawn" and rec["state"] in ("processing", "completed")
    assert api.get(f"/meetings/{meeting_id}", token=world.patient.token).body["recordingState"] == "off"


def test_a_retried_withdrawal_finishes_the_stop(api: Api, world: World, pipelines, clean_db: str, monkeypatch):
    consent(api, world)
    meeting_id = new_meeting(api, world)
    api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    pipelines.fail_next["DeleteMediaCapturePipeline"] = ["ServiceUnavailableException"]

    first = api.put("/appointments/appt_123/consent", REFUSED, token=world.patient.token)
    retried = api.put("/appointments/appt_123/consent", REFUSED, token=world.patient.token)

    assert first.status == 503 and retried.status == 200 and retried.body["recordingsStopped"] == 1
    assert recordings(clean_db)[0]["stop_reason"] == "consent_withdrawn"


def test_a_start_whose_database_write_fails_leaves_no_capture_running(
    api: Api, world: World, runtime: Runtime, pipelines: MediaPipelinesEmulator, clean_db: str, monkeypatch
):
    from videocall.core.errors import DatabaseUnavailable

    consent(api, world)
    meeting_id = new_meeting(api, world)

    def database_gone(**_kwargs):
        raise DatabaseUnavailable()

    monkeypatch.setattr(runtime.recording_repository, "activate", database_gone)
    reply = api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)

    assert (reply.status, reply.code) == (503, "database_unavailable")
    captures = [e["detail"]["mediaPipelineId"] for e in pipelines.events
                if e["detail"]["eventType"] == "chime:MediaPipelineInProgress"][:1]  # fmt: skip
    status = pipelines.get_media_pipeline(MediaPipelineId=captures[0])["MediaPipeline"]["MediaCapturePipeline"]
    assert status["Status"] == "Stopped"  # nothing keeps recording without a row that knows of it


def test_a_start_that_died_before_activation_is_found_by_its_token_and_stopped(
    api: Api, world: World, runtime: Runtime, pipelines: MediaPipelinesEmulator, clean_db: str, monkeypatch
):
    """The function died after Chime made the capture and before anything was stored (not even the stop)."""
    from handlers.reconcile import handler as reconcile

    consent(api, world)
    meeting_id = new_meeting(api, world)
    monkeypatch.setattr(runtime.recording_repository, "activate", lambda **_: (_ for _ in ()).throw(SystemExit()))
    monkeypatch.setattr(runtime.pipelines, "stop_capture", lambda _id: None)
    with pytest.raises(SystemExit):
        api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    monkeypatch.undo()
    capture = next(e["detail"]["mediaPipelineId"] for e in pipelines.events)
    query(clean_db, "UPDATE recordings SET updated_at = now() - interval '10 minutes' RETURNING 1")

    withdrawn = api.put("/appointments/appt_123/consent", REFUSED, token=world.patient.token)
    outcome = reconcile({}, LambdaContextStub())

    assert withdrawn.status == 200 and withdrawn.body["recordingsStopped"] == 1
    status = pipelines.get_media_pipeline(MediaPipelineId=capture)["MediaPipeline"]["MediaCapturePipeline"]
    assert status["Status"] == "Stopped"
    assert outcome["recordings"]["failed"] == 0  # settled by the withdrawal, not left to the sweep
    assert recordings(clean_db)[0]["stop_reason"] == "consent_withdrawn"


def test_a_stuck_start_never_blocks_the_reconciler_or_meeting_events(
    api: Api, world: World, pipelines: MediaPipelinesEmulator, clean_db: str
):
    from handlers.reconcile import handler as reconcile

    consent(api, world)
    new_meeting(api, world)
    # A claim whose function died before calling Chime: 'starting', no pipeline, minutes old.
    query(clean_db, """INSERT INTO recordings (session_id, meeting_id, appointment_id, sequence, client_request_token,
                           s3_prefix, state, updated_at)
                       SELECT id, meeting_id, appointment_id, 1, meeting_id || '-r1',
                              'recordings/appt_123/' || meeting_id || '/r1', 'starting', now() - interval '10 minutes'
                         FROM video_call_sessions RETURNING 1""")  # fmt: skip
    pipelines.fail_next["CreateMediaCapturePipeline"] = ["ServiceUnavailableException"]  # Chime down for it

    first = reconcile({}, LambdaContextStub())  # does not raise; the row waits for the next run
    second = reconcile({}, LambdaContextStub())

    assert first["recordings"]["failed"] == 0 and second["recordings"]["failed"] == 1
    (rec,) = recordings(clean_db)
    assert rec["state"] == "failed" and rec["capture_pipeline_id"] is None
    # Whatever Chime may have started under that token was asked for and stopped.
    captures = [e for e in pipelines.events if e["detail"]["eventType"] == "chime:MediaPipelineDeleted"]
    assert captures
