"""Live transcription and the clinical record, end to end against the emulators: consent, the engine
and region policy, the capture that keeps no media, Chime's transcription events, the transcript by
speaker, medical entities and ICD-10 candidates (the labelled local stand-in), retention and erasure."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import BUCKET, Api, LocalAws, World, create_body, query
from handlers.chime_meeting_events import handler as meeting_events
from videocall.local.chime_emulator import ChimeEmulator
from videocall.local.server import LambdaContextStub
from videocall.runtime import Runtime
from videocall.transcripts.policy import PII_IDENTIFICATION_LANGUAGES, plan

ALL = {"recording": "granted", "transcription": "granted", "aiProcessing": "granted"}


def consent(api: Api, world: World, **decisions: str) -> None:
    reply = api.put("/appointments/appt_123/consent", {**ALL, **decisions}, token=world.patient.token)
    assert reply.status == 200, reply.body


def create(api: Api, world: World, *, transcription: bool = True, recording: bool = False,
           language: str = "en-US", who=None) -> dict[str, Any]:  # fmt: skip
    body = {k: v for k, v in create_body(enableRecording=recording, enableTranscription=transcription,
                                         transcriptionLanguage=language).items() if k != "action"}  # fmt: skip
    reply = api.post("/meetings", body, token=(who or world.provider).token)
    assert reply.status in (200, 201), reply.body
    return reply.body


def hold_call(api: Api, world: World, meeting_id: str) -> None:
    """The patient and a nurse join, then the provider ends the call."""
    api.post(f"/meetings/{meeting_id}/attendees", token=world.patient.token)
    api.post(f"/meetings/{meeting_id}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token)
    api.post(f"/meetings/{meeting_id}/attendees", token=world.nurse.token)
    api.delete(f"/meetings/{meeting_id}", token=world.provider.token)


def test_create_with_transcription_starts_transcribe_medical_in_eu_west_1_with_phi_identification(
    api: Api, world: World, emulator: ChimeEmulator, clean_db: str
):
    consent(api, world)
    body = create(api, world)
    meeting_id = body["meeting"]["MeetingId"]

    assert body["transcription"] == {"state": "starting", "reason": None}
    assert emulator.transcribing[meeting_id] == {"EngineTranscribeMedicalSettings": {
        "LanguageCode": "en-US", "Specialty": "PRIMARYCARE", "Type": "CONVERSATION",
        "ContentIdentificationType": "PHI", "Region": "eu-west-1"}}  # fmt: skip
    state = api.get(f"/meetings/{meeting_id}", token=world.patient.token).body
    assert state["recordingState"] == "off"  # the transcript's capture is not a recording
    (row,) = query(clean_db, "SELECT transcription_state, transcription_engine, transcription_region"
                             " FROM video_call_sessions")  # fmt: skip
    assert row == {"transcription_state": "on", "transcription_engine": "medical", "transcription_region": "eu-west-1"}
    (capture,) = query(clean_db, "SELECT keep_media, state FROM recordings")
    assert capture == {"keep_media": False, "state": "recording"}


def test_the_call_becomes_a_transcript_by_speaker_and_a_clinical_record_and_its_media_is_gone(
    api: Api, world: World, aws: LocalAws, clean_db: str
):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)

    page = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token)

    assert page.status == 200, page.body
    body = page.body
    roles = [s["speakerRole"] for s in body["segments"]]
    assert roles[:2] == ["provider", "patient"] and "participant" in roles
    assert body["segments"][0]["text"] == "Good morning, what brings you in today?"
    assert body["segments"][0]["speakerUserId"] == world.provider.id
    assert body["partialCoverage"] is True  # three people spoke: Chime transcribes two at a time
    assert body["processing"]["medical"] == "complete"
    texts = {e["text"].lower() for e in body["entities"]}
    assert {"chest pain", "lisinopril", "penicillin"} <= texts
    negated = [e for e in body["entities"] if e["text"].lower() == "shortness of breath"]
    assert any("NEGATION" in e["traits"] for e in negated)  # the patient said "No shortness of breath"
    assert {"R07.9", "I10"} <= {c["code"] for c in body["icd10Candidates"]}
    # The capture existed only for the transcript: its audio and video are gone, every version.
    prefix = f"recordings/appt_123/{meeting_id}/"
    keys = aws.objects(prefix)
    assert keys and all("/transcription-messages/" in k or "/meeting-events/" in k or "/data-channel/" in k
                        for k in keys)  # fmt: skip
    versions = aws.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    assert not [v for v in versions.get("Versions", []) if "/audio/" in v["Key"] or "video" in v["Key"]]
    assert api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token).body["recordings"] == []
    (session,) = query(clean_db, "SELECT transcript, transcript_segments FROM video_call_sessions")
    assert session["transcript"].startswith("provider: Good morning")
    assert len(session["transcript_segments"]) == len(body["segments"])


def test_only_clinical_staff_read_the_transcript(api: Api, world: World, runtime: Runtime, monkeypatch):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)

    patient = api.get(f"/meetings/{meeting_id}/transcript", token=world.patient.token)
    outsider = api.get(f"/meetings/{meeting_id}/transcript", token=world.outsider.token)
    nurse = api.get(f"/meetings/{meeting_id}/transcript", token=world.nurse.token)
    monkeypatch.setattr(runtime.transcripts, "_for_patient", True)
    allowed = api.get(f"/meetings/{meeting_id}/transcript", token=world.patient.token)

    assert (patient.status, patient.code) == (404, "meeting_not_found")
    assert (outsider.status, outsider.code) == (404, "meeting_not_found")
    assert nurse.status == 200 and nurse.body["entities"]
    assert allowed.status == 200 and allowed.body["segments"] and "entities" not in allowed.body


def test_pages_follow_an_opaque_cursor_and_a_tampered_one_is_400(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    seen: list[int] = []
    cursor = None
    while True:
        path = f"/meetings/{meeting_id}/transcript?limit=3" + (f"&after={cursor}" if cursor else "")
        body = api.get(path, token=world.provider.token).body
        seen += [s["sequence"] for s in body["segments"]]
        cursor = body["next"]
        if not cursor:
            break
    total = query(clean_db, "SELECT count(*) AS n FROM call_transcript_segments")[0]["n"]
    assert seen == list(range(1, total + 1))
    bad = api.get(f"/meetings/{meeting_id}/transcript?after=not-a-cursor", token=world.provider.token)
    assert (bad.status, bad.code) == (400, "invalid_request")
    viewed = query(clean_db, "SELECT count(*) AS n FROM audit_events WHERE action = 'transcript.view'")[0]["n"]
    assert viewed >= 3  # every read is an audit event


def test_building_twice_gives_the_same_rows(api: Api, world: World, runtime: Runtime, clean_db: str):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    first = query(clean_db, "SELECT * FROM call_transcript_segments ORDER BY sequence")
    entities = query(clean_db, "SELECT * FROM call_medical_entities ORDER BY ordinal")
    session_id = first[0]["session_id"]

    runtime.transcripts.build(str(session_id))

    assert query(clean_db, "SELECT * FROM call_transcript_segments ORDER BY sequence") == first
    assert query(clean_db, "SELECT * FROM call_medical_entities ORDER BY ordinal") == entities


def test_without_ai_consent_there_is_a_transcript_and_no_extraction(api: Api, world: World):
    consent(api, world, aiProcessing="refused")
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    body = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert body["segments"] and body["entities"] == [] and body["processing"]["medical"] == "skipped"
    assert body["processing"]["medicalReason"] == "no AI-processing consent"


def test_a_non_english_transcript_is_not_extracted_and_says_why(api: Api, world: World, emulator: ChimeEmulator):
    consent(api, world)
    meeting_id = create(api, world, language="de-DE")["meeting"]["MeetingId"]
    assert emulator.transcribing[meeting_id] == {"EngineTranscribeSettings": {"LanguageCode": "de-DE",
                                                                              "Region": "eu-central-1"}}  # fmt: skip
    hold_call(api, world, meeting_id)
    body = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert body["processing"]["medical"] == "skipped" and "not English" in body["processing"]["medicalReason"]


def test_extraction_failure_is_marked_incomplete_and_a_later_run_completes_it(
    api: Api, world: World, runtime: Runtime, clean_db: str
):
    from handlers.reconcile import handler as reconcile

    consent(api, world)
    runtime.medical.caller.sleep = lambda _s: None
    runtime.medical._client.fail_next["DetectEntitiesV2"] = ["InternalServerException"]
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    first = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    query(clean_db, "UPDATE call_transcripts SET built_at = now() - interval '5 minutes' RETURNING 1")

    outcome = reconcile({}, LambdaContextStub())

    assert first["processing"]["medical"] == "incomplete" and first["entities"] == []
    assert outcome["clinicalRecords"] == {"complete": 1}
    later = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert later["processing"]["medical"] == "complete" and later["entities"]


def test_control_rules_consent_language_and_idempotency(api: Api, world: World, emulator: ChimeEmulator):
    meeting_id = create(api, world, transcription=False)["meeting"]["MeetingId"]
    no_consent = api.post(f"/meetings/{meeting_id}/transcription", token=world.provider.token)
    consent(api, world)
    bad_language = api.post(f"/meetings/{meeting_id}/transcription", {"language": "es-ES"},
                            token=world.provider.token)  # fmt: skip
    by_patient = api.post(f"/meetings/{meeting_id}/transcription", token=world.patient.token)
    started = api.post(f"/meetings/{meeting_id}/transcription", {"language": "en-US", "specialty": "CARDIOLOGY"},
                       token=world.provider.token)  # fmt: skip
    again = api.post(f"/meetings/{meeting_id}/transcription", token=world.provider.token)
    stopped = api.delete(f"/meetings/{meeting_id}/transcription", token=world.provider.token)
    stopped_again = api.delete(f"/meetings/{meeting_id}/transcription", token=world.provider.token)

    assert (no_consent.status, no_consent.code) == (409, "consent_required")
    assert (bad_language.status, bad_language.code) == (400, "unsupported_transcription_language")
    assert (by_patient.status, by_patient.code) == (403, "not_a_clinical_controller")
    assert started.status == 200 and started.body["engine"] == "medical"
    assert emulator.transcribed[meeting_id]["EngineTranscribeMedicalSettings"]["Specialty"] == "CARDIOLOGY"
    assert again.status == 200 and again.body["transcriptionState"] == "on"  # a no-op returning the state
    assert stopped.body["transcriptionState"] == "off" and stopped_again.status == 200
    assert meeting_id not in emulator.transcribing


def test_withdrawing_transcription_consent_stops_it(api: Api, world: World, emulator: ChimeEmulator, clean_db: str):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    reply = api.put("/appointments/appt_123/consent", {**ALL, "transcription": "refused"}, token=world.patient.token)
    assert reply.body["recordingsStopped"] == 2 and meeting_id not in emulator.transcribing  # transcription, capture
    (capture,) = query(clean_db, "SELECT keep_media, state, stop_reason FROM recordings")
    assert capture == {"keep_media": False, "state": "completed", "stop_reason": "consent_withdrawn"}
    state = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body["transcriptionState"]
    assert state == "off"


def event(event_type: str, meeting_id: str, at_ms: int, event_id: str, **extra: Any) -> dict[str, Any]:
    return {"version": "0", "id": event_id, "detail-type": "Chime Meeting State Change", "source": "aws.chime",
            "account": "111122223333", "time": "2026-11-26T10:00:00Z", "region": "eu-central-1", "resources": [],
            "detail": {"version": "0", "eventType": event_type, "timestamp": at_ms, "meetingId": meeting_id,
                       "mediaRegion": "eu-central-1", **extra}}  # fmt: skip


def test_transcription_events_drive_its_state_and_a_failure_is_recorded(api: Api, world: World, clean_db: str, capsys):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    base = 1_900_000_000_000
    send = lambda e: meeting_events(e, LambdaContextStub())  # noqa: E731

    interrupted = send(event("chime:TranscriptionInterrupted", meeting_id, base, "t1"))
    resumed = send(event("chime:TranscriptionResumed", meeting_id, base + 1, "t2"))
    late = send(event("chime:TranscriptionInterrupted", meeting_id, base - 5, "t0"))
    capsys.readouterr()
    failed = send(event("chime:TranscriptionFailed", meeting_id, base + 2, "t3",
                        message="Transcribe could not start: bad settings"))  # fmt: skip

    assert [interrupted["outcome"], resumed["outcome"], late["outcome"], failed["outcome"]] == [
        "interrupted", "on", "unchanged", "failed"]  # fmt: skip
    (row,) = query(clean_db, "SELECT transcription_state, error_message, error_occurred_at FROM video_call_sessions")
    assert row["transcription_state"] == "failed" and "bad settings" in row["error_message"]
    assert '"TranscriptionFailures"' in capsys.readouterr().out


def test_recording_and_transcription_together_keep_the_recordings_media(api: Api, world: World, aws: LocalAws):
    consent(api, world)
    meeting_id = create(api, world, recording=True)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    recording = api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token).body["recordings"]
    transcript = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert [r["state"] for r in recording] == ["completed"]
    assert any(a["kind"] == "audio" for a in recording[0]["artifacts"])  # the recording's media is kept
    assert transcript["segments"]


def test_stopping_the_recording_keeps_transcribing_in_a_capture_without_media(
    api: Api, world: World, aws: LocalAws, clean_db: str
):
    consent(api, world)
    meeting_id = create(api, world, recording=True)["meeting"]["MeetingId"]
    api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token)
    captures = query(clean_db, "SELECT sequence, keep_media, state FROM recordings ORDER BY sequence")
    assert [(c["keep_media"], c["state"]) for c in captures] == [(True, "completed"), (False, "recording")]
    hold_call(api, world, meeting_id)
    body = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert body["segments"] and body["processing"]["transcript"] == "ready"


def test_erasure_and_retention_cover_the_transcript(api: Api, world: World, clean_db: str):
    import psycopg
    from conftest import add_user
    from handlers.apply_retention import handler as retention

    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    query(clean_db, "UPDATE call_transcripts SET built_at = now() - interval '100 days' RETURNING 1")
    expired = retention({}, LambdaContextStub())
    assert expired["transcripts"] == 1
    assert query(clean_db, "SELECT count(*) AS n FROM call_transcript_segments")[0]["n"] == 0
    assert query(clean_db, "SELECT count(*) AS n FROM call_medical_entities")[0]["n"] == 0
    assert query(clean_db, "SELECT transcript FROM video_call_sessions")[0]["transcript"] is None
    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-dpo-t", "admin", "DPO")
    erased = api.post("/admin/erasures", {"appointmentId": "appt_123"}, token=admin.token).body
    assert erased["deleted"]["transcripts"] == 0 and erased["nothingFound"] is False  # recordings row remained


def test_transcript_text_never_reaches_the_logs(api: Api, world: World, capfd):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token)
    out, err = capfd.readouterr()
    for phrase in ("chest pain", "lisinopril", "Penicillin", "Good morning", "troponin"):
        assert phrase not in out + err


@pytest.mark.parametrize("language", ["en-US", "en-GB", "es-US", "fr-CA", "fr-FR", "en-AU", "it-IT", "de-DE",
                                      "pt-BR", "ja-JP", "ko-KR", "zh-CN", "th-TH", "hi-IN"])  # fmt: skip
def test_the_engine_region_and_pii_policy_for_every_language(language: str):
    default = plan(language, policy="medical-en-us", medical_region="eu-west-1", standard_region="eu-central-1")
    one_region = plan(language, policy="standard-only", medical_region="eu-west-1", standard_region="eu-central-1")
    if language == "en-US":
        assert (default.engine, default.region) == ("medical", "eu-west-1")
        assert (
            default.configuration("PRIMARYCARE")["EngineTranscribeMedicalSettings"]["ContentIdentificationType"]
            == "PHI"
        )
    else:
        assert (default.engine, default.region) == ("standard", "eu-central-1")
    assert (one_region.engine, one_region.region) == ("standard", "eu-central-1")
    settings = one_region.configuration("PRIMARYCARE")["EngineTranscribeSettings"]
    assert ("ContentIdentificationType" in settings) == (language in PII_IDENTIFICATION_LANGUAGES)
    assert language not in ("ja-JP", "ko-KR", "zh-CN", "th-TH", "hi-IN") or "ContentIdentificationType" not in settings


def test_a_refused_language_never_reaches_chime():
    from videocall.core.errors import UnsupportedTranscriptionLanguage

    with pytest.raises(UnsupportedTranscriptionLanguage):
        plan("es-ES", policy="medical-en-us", medical_region="eu-west-1", standard_region="eu-central-1")


def test_the_draft_summary_is_the_providers_marked_machine_generated_until_reviewed(
    api: Api, world: World, runtime: Runtime, clean_db: str
):
    monkey_summary = runtime.summary  # the labelled local stand-in for Bedrock
    runtime.transcripts._summary = lambda: monkey_summary
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)

    provider = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    nurse = api.get(f"/meetings/{meeting_id}/transcript", token=world.nurse.token).body
    by_nurse = api.post(f"/meetings/{meeting_id}/transcript/summary/review", token=world.nurse.token)
    reviewed = api.post(f"/meetings/{meeting_id}/transcript/summary/review", token=world.provider.token)
    after = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body

    summary = provider["summary"]
    assert summary["state"] == "draft" and summary["machineGenerated"] is True and summary["reviewed"] is False
    assert "LOCAL STAND-IN" in summary["text"] and "Not a diagnosis" in summary["notice"]
    assert "summary" not in nurse  # shown to the provider only
    assert (by_nurse.status, by_nurse.code) == (404, "meeting_not_found")
    assert reviewed.status == 200 and reviewed.body["summaryState"] == "reviewed"
    assert after["summary"]["reviewed"] is True and after["summary"]["reviewedBy"] == world.provider.id


def test_no_summary_without_ai_consent(api: Api, world: World, runtime: Runtime):
    runtime.transcripts._summary = lambda: runtime.summary
    consent(api, world, aiProcessing="refused")
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    body = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert body["summary"]["state"] == "skipped" and body["summary"]["text"] is None


def test_the_transcripts_command_completes_incomplete_records(
    api: Api, world: World, runtime: Runtime, clean_db: str, capsys
):
    import json

    from videocall import cli

    consent(api, world)
    runtime.medical.caller.sleep = lambda _s: None
    runtime.medical._client.fail_next["DetectEntitiesV2"] = ["InternalServerException"]
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    query(clean_db, "UPDATE call_transcripts SET built_at = now() - interval '5 minutes' RETURNING 1")
    capsys.readouterr()

    assert cli.main(["transcripts", "complete"]) == 0

    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"complete": 1}
    assert query(clean_db, "SELECT medical_state FROM call_transcripts")[0]["medical_state"] == "complete"


def media_versions(aws: LocalAws, meeting_id: str) -> list[str]:
    page = aws.s3.list_object_versions(Bucket=BUCKET, Prefix=f"recordings/appt_123/{meeting_id}/")
    return [
        v["Key"]
        for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        if any(f"/{kind}/" in v["Key"] for kind in ("audio", "video", "content", "composited-video"))
    ]


def test_the_transcripts_capture_is_audio_only(api: Api, world: World, pipelines, clean_db: str):
    consent(api, world)
    create(api, world)
    capture_id = query(clean_db, "SELECT capture_pipeline_id FROM recordings")[0]["capture_pipeline_id"]
    capture = pipelines.get_media_pipeline(MediaPipelineId=capture_id)["MediaPipeline"]["MediaCapturePipeline"]
    artifacts = capture["ChimeSdkMeetingConfiguration"]["ArtifactsConfiguration"]
    assert artifacts["Audio"] == {"MuxType": "AudioOnly"} and artifacts["Video"]["State"] == "Disabled"
    assert artifacts["Content"]["State"] == "Disabled" and "CompositedVideo" not in artifacts


def test_a_failed_transcription_stops_its_capture_and_keeps_no_media(
    api: Api, world: World, aws: LocalAws, clean_db: str
):
    consent(api, world, recording="refused")
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    meeting_events(event("chime:TranscriptionFailed", meeting_id, 1_950_000_000_000, "tf", message="x"),
                   LambdaContextStub())  # fmt: skip
    from conftest import BUS

    BUS.deliver()
    hold_call(api, world, meeting_id)

    (capture,) = query(clean_db, "SELECT state, stop_reason, media_deleted_at FROM recordings")
    assert capture["stop_reason"] == "transcription_failed" and capture["media_deleted_at"] is not None
    assert media_versions(aws, meeting_id) == []


def test_a_start_chime_refuses_releases_the_capture_and_keeps_no_media(
    api: Api, world: World, emulator: ChimeEmulator, aws: LocalAws, clean_db: str
):
    from handlers.reconcile import handler as reconcile

    consent(api, world)
    meeting_id = create(api, world, transcription=False)["meeting"]["MeetingId"]
    emulator.fail_next["StartMeetingTranscription"] = ["ServiceUnavailableException"] * 5

    reply = api.post(f"/meetings/{meeting_id}/transcription", token=world.provider.token)
    reconcile({}, LambdaContextStub())

    assert (reply.status, reply.code) == (503, "chime_unavailable")
    (capture,) = query(clean_db, "SELECT state, stop_reason FROM recordings")
    assert capture["stop_reason"] == "start_failed"
    state = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body["transcriptionState"]
    assert state == "off" and media_versions(aws, meeting_id) == []


def test_a_replayed_event_never_brings_back_a_transcript_retention_deleted(
    api: Api, world: World, runtime: Runtime, clean_db: str
):
    from handlers.apply_retention import handler as retention

    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    hold_call(api, world, meeting_id)
    session_id = str(query(clean_db, "SELECT id FROM video_call_sessions")[0]["id"])
    query(clean_db, "UPDATE call_transcripts SET built_at = now() - interval '100 days' RETURNING 1")
    retention({}, LambdaContextStub())

    assert runtime.transcripts.build(session_id) == "dropped"
    assert query(clean_db, "SELECT count(*) AS n FROM call_transcript_segments")[0]["n"] == 0
    body = api.get(f"/meetings/{meeting_id}/transcript", token=world.provider.token).body
    assert body["segments"] == [] and body["processing"]["transcript"] == "deleted"


def test_a_late_transcription_started_never_undoes_a_stop(api: Api, world: World, clean_db: str):
    consent(api, world)
    meeting_id = create(api, world)["meeting"]["MeetingId"]
    api.delete(f"/meetings/{meeting_id}/transcription", token=world.provider.token)
    late = meeting_events(event("chime:TranscriptionStarted", meeting_id, 1_000, "late-start"), LambdaContextStub())
    assert late["outcome"] == "unchanged"
    assert query(clean_db, "SELECT transcription_state FROM video_call_sessions")[0]["transcription_state"] == "off"


def test_a_transcript_file_with_nul_or_absurd_times_still_builds(api: Api, world: World, runtime: Runtime):
    from videocall.transcripts.assembly import parse_transcription_file

    line = ('{"transcript":{"results":[{"resultId":"r1","isPartial":false,"startTimeMs":99999999999999999999,'
            '"endTimeMs":5,"alternatives":[{"transcript":"chest\\u0000 pain","items":[]}]}]}}\n'
            '{"transcript":{"results":[{"resultId":"r2","isPartial":false,"startTimeMs":10,"endTimeMs":20,'
            '"alternatives":[{"transcript":"no\\u0000 fever","items":[]}]}]}}')  # fmt: skip
    report = parse_transcription_file(line)
    assert [r.text for r in report.results] == ["no fever"] and report.malformed_lines == 1
