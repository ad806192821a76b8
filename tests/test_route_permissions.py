"""Each route's IAM Chime actions (the route table, which the CDK app turns into policies) cover every
Chime operation its code makes, on every path: new, live, rejoin, auto-ended, failed, batch, end.
A call missing here would be AccessDenied in AWS and a 502 for the app."""

from __future__ import annotations

from collections import defaultdict

from conftest import Api, World, create_body
from videocall.local.chime_emulator import ChimeEmulator, service_model
from videocall.routes import ROUTES_BY_NAME


def spy(emulator: ChimeEmulator, monkeypatch) -> list[str]:
    made: list[str] = []
    for operation in service_model().operation_names:
        method = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
        if hasattr(emulator, method):
            original = getattr(emulator, method)

            def recorded(*args, _op=operation, _original=original, **kwargs):
                made.append(f"chime:{_op}")
                return _original(*args, **kwargs)

            monkeypatch.setattr(emulator, method, recorded)
    return made


def test_every_chime_call_is_allowed_by_its_routes_actions(
    api: Api, world: World, emulator: ChimeEmulator, monkeypatch
):
    made = spy(emulator, monkeypatch)
    used: dict[str, set[str]] = defaultdict(set)

    def as_route(route: str, call):
        before = len(made)
        reply = call()
        used[route].update(made[before:])
        return reply

    body = {k: v for k, v in create_body().items() if k != "action"}
    for route, call in (("create_meeting", lambda: api.post("/meetings", body, token=world.provider.token)),
                        ("chime_meeting_token", lambda: api.legacy(create_body(), token=world.patient.token))):  # fmt: skip
        meeting_id = as_route(route, call).body["meeting"]["MeetingId"]
        # Rejoin where Chime withholds the JoinToken: a new attendee and the old one deleted.
        original = emulator.get_attendee
        monkeypatch.setattr(emulator, "get_attendee", lambda _o=original, **p: {
            "Attendee": {k: v for k, v in _o(**p)["Attendee"].items() if k != "JoinToken"}})  # fmt: skip
        as_route("join_meeting", lambda m=meeting_id: api.post(f"/meetings/{m}/attendees", token=world.patient.token))
        as_route(route, lambda c=call: c())  # create on the live meeting, rejoining the same way
        monkeypatch.setattr(emulator, "get_attendee", original)
        as_route("add_attendees", lambda m=meeting_id: api.post(
            f"/meetings/{m}/attendees/batch", {"userIds": [world.nurse.id]}, token=world.provider.token))  # fmt: skip
        as_route("chime_meeting_token", lambda m=meeting_id: api.legacy(
            {"action": "batch-join", "meetingId": m, "userIds": [world.interpreter.id]}, token=world.provider.token))  # fmt: skip
        as_route("get_meeting", lambda m=meeting_id: api.get(f"/meetings/{m}", token=world.patient.token))
        emulator.auto_end(meeting_id)  # create must replace it
        meeting_id = as_route(route, call).body["meeting"]["MeetingId"]
        if route == "create_meeting":
            as_route("end_meeting", lambda m=meeting_id: api.delete(f"/meetings/{m}", token=world.provider.token))
        else:
            as_route(
                route, lambda m=meeting_id: api.legacy({"action": "end", "meetingId": m}, token=world.provider.token)
            )
    # A create whose attendee fails after the meeting exists takes the meeting back (DeleteMeeting).
    emulator.fail_next["CreateAttendee"] = ["UnprocessableEntityException"]
    api.legacy(create_body(), token=world.provider.token)
    emulator.fail_next["CreateAttendee"] = ["UnprocessableEntityException"]
    as_route("create_meeting", lambda: api.post("/meetings", body, token=world.provider.token))

    assert "chime:DeleteAttendee" in used["join_meeting"]  # the scenario reached the rare paths
    assert "chime:DeleteMeeting" in used["create_meeting"]
    for route, operations in used.items():
        allowed = set(ROUTES_BY_NAME[route].aws_actions)
        assert operations <= allowed, f"{route} calls {sorted(operations - allowed)} but its role may not"


# --- every AWS call of every route, event function and job, against the route table ---------------------------
S3_ACTIONS = {
    "list_objects_v2": ("s3:ListBucket",),
    "list_object_versions": ("s3:ListBucketVersions",),
    "delete_objects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "generate_presigned_url": ("s3:GetObject", "kms:Decrypt"),  # the link carries the function's credentials
}
PIPELINE_OPERATIONS = {
    "create_media_capture_pipeline": ("chime:CreateMediaCapturePipeline", "iam:PassRole", "s3:GetBucketPolicy"),
    "create_media_concatenation_pipeline": ("chime:CreateMediaConcatenationPipeline",),
    "delete_media_capture_pipeline": ("chime:DeleteMediaCapturePipeline",),
    "get_media_pipeline": ("chime:GetMediaPipeline",),
}


def test_every_aws_call_of_recording_consent_privacy_events_and_jobs_is_in_its_routes_actions(
    api: Api, world: World, emulator: ChimeEmulator, pipelines, aws, clean_db: str, monkeypatch
):
    import psycopg
    from conftest import BUS, add_user, query
    from handlers.apply_retention import handler as retention
    from handlers.reconcile import handler as reconcile
    from videocall.local.server import LambdaContextStub
    from videocall.routes import EVENT_ROUTES, SCHEDULED_JOBS

    current = ["?"]
    used: dict[str, set[str]] = defaultdict(set)
    made = spy(emulator, monkeypatch)
    # Chime's own writes into the bucket (the emulator's) are not our functions' calls: its own client.
    from videocall.local.s3 import s3_client

    pipelines.s3 = s3_client(None)

    def record(target, table):
        for method, actions in table.items():
            original = getattr(target, method)

            def wrapped(*args, _original=original, _actions=actions, **kwargs):
                used[current[0]].update(_actions)
                return _original(*args, **kwargs)

            monkeypatch.setattr(target, method, wrapped)

    record(pipelines, PIPELINE_OPERATIONS)
    record(aws.s3, S3_ACTIONS)
    from videocall.runtime import runtime as installed_runtime

    record(installed_runtime().medical._client, {"detect_entities_v2": ("comprehendmedical:DetectEntitiesV2",),
                                        "infer_icd10_cm": ("comprehendmedical:InferICD10CM",)})  # fmt: skip
    by_detail = {r.detail_type: r.name for r in EVENT_ROUTES}
    api.deliver_events = False

    def deliver():
        import importlib

        while BUS._queue:
            event = BUS._queue.popleft()
            current[0] = by_detail[event["detail-type"]]
            before = len(made)
            importlib.import_module(f"handlers.{current[0]}").handler(event, LambdaContextStub())
            used[current[0]].update(made[before:])
        current[0] = "the test itself"  # its own listing of the bucket is nobody's route

    def as_route(route: str, call):
        current[0] = route
        before = len(made)
        reply = call()
        used[route].update(made[before:])
        deliver()
        return reply

    with psycopg.connect(clean_db, autocommit=True) as conn:
        admin = add_user(conn, "fb-admin", "admin", "Admin")
    grant = {"recording": "granted", "transcription": "granted", "aiProcessing": "granted"}
    # Transcription: start, stop, start on create; the transcript built and its capture's media deleted.
    as_route("put_consent", lambda: api.put("/appointments/appt_123/consent", grant, token=world.patient.token))
    plain = {k: v for k, v in create_body(enableRecording=False, enableTranscription=False).items() if k != "action"}
    live = as_route("create_meeting", lambda: api.post("/meetings", plain, token=world.provider.token)).body[
        "meeting"]["MeetingId"]  # fmt: skip
    as_route("start_transcription", lambda: api.post(f"/meetings/{live}/transcription", token=world.provider.token))
    as_route("stop_transcription", lambda: api.delete(f"/meetings/{live}/transcription", token=world.provider.token))
    as_route("get_transcript", lambda: api.get(f"/meetings/{live}/transcript", token=world.provider.token))
    as_route("end_meeting", lambda: api.delete(f"/meetings/{live}", token=world.provider.token))
    refuse = {"recording": "refused", "transcription": "granted", "aiProcessing": "granted"}
    body = {k: v for k, v in create_body().items() if k != "action"}
    meeting_id = as_route("create_meeting", lambda: api.post("/meetings", body, token=world.provider.token)).body[
        "meeting"]["MeetingId"]  # fmt: skip
    as_route("put_consent", lambda: api.put("/appointments/appt_123/consent", grant, token=world.patient.token))
    as_route("get_consent", lambda: api.get("/appointments/appt_123/consent", token=world.provider.token))
    as_route("put_consent", lambda: api.put("/appointments/appt_123/consent", refuse, token=world.patient.token))
    as_route("put_consent", lambda: api.put("/appointments/appt_123/consent", grant, token=world.patient.token))
    as_route("stop_recording", lambda: api.delete(f"/meetings/{meeting_id}/recording", token=world.provider.token))
    pipelines.fail_next["CreateMediaConcatenationPipeline"] = ["ForbiddenException"]  # the clean-up path
    as_route("start_recording", lambda: api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token))
    as_route("start_recording", lambda: api.post(f"/meetings/{meeting_id}/recording", token=world.provider.token))
    as_route("get_recordings", lambda: api.get(f"/meetings/{meeting_id}/recording", token=world.provider.token))
    # Left empty: the reconciler stops the capture and ends the meeting.
    attendee = query(clean_db, "SELECT m.attendee_id FROM meeting_attendees m JOIN video_call_sessions s"
                               " ON s.id = m.session_id WHERE s.meeting_id = %s LIMIT 1", (meeting_id,))[0]["attendee_id"]  # fmt: skip
    emulator.play(meeting_id, attendee, "joined")
    emulator.play(meeting_id, attendee, "left")
    deliver()
    query(clean_db, "UPDATE session_presence SET empty_since = now() - interval '1 hour' RETURNING 1")
    as_route("reconcile", lambda: reconcile({}, LambdaContextStub()))
    # Stuck recordings: GetMediaPipeline for a capture that never reported.
    legacy = create_body()
    meeting_id = as_route("chime_meeting_token", lambda: api.legacy(legacy, token=world.provider.token)).body[
        "meeting"]["MeetingId"]  # fmt: skip
    BUS.clear()
    query(clean_db, "UPDATE recordings SET state = 'processing', updated_at = now() - interval '1 day'"
                    " WHERE meeting_id = %s RETURNING 1", (meeting_id,))  # fmt: skip
    for key in aws.objects(f"recordings/appt_123/{meeting_id}/"):
        aws.s3.delete_object(Bucket="videocall-test-recordings", Key=key)
    as_route("reconcile", lambda: reconcile({}, LambdaContextStub()))
    patient = world.patient.id
    as_route("export_patient", lambda: api.get(f"/admin/patients/{patient}/export", token=admin.token))
    as_route("patient_audit_trail", lambda: api.get(f"/admin/patients/{patient}/audit-trail", token=admin.token))
    as_route("place_legal_hold", lambda: api.put("/admin/appointments/appt_123/legal-hold", {"reference": "r"},
                                                 token=admin.token))  # fmt: skip
    as_route("lift_legal_hold", lambda: api.delete("/admin/appointments/appt_123/legal-hold", token=admin.token))
    query(clean_db, "UPDATE recordings SET completed_at = now() - interval '1000 days' RETURNING 1")
    as_route("apply_retention", lambda: retention({}, LambdaContextStub()))
    as_route("erase", lambda: api.post("/admin/erasures", {"patientId": patient}, token=admin.token))

    # The scenario reached what it is about.
    assert "chime:DeleteMediaCapturePipeline" in used["start_recording"], dict(used)
    assert "chime:GetMediaPipeline" in used["reconcile"] and "chime:DeleteMeeting" in used["reconcile"]
    assert "s3:ListBucket" in used["chime_pipeline_events"]
    assert "comprehendmedical:DetectEntitiesV2" in used["chime_pipeline_events"]  # the transcript's record
    assert "chime:StartMeetingTranscription" in used["start_transcription"]
    assert "s3:DeleteObjectVersion" in used["apply_retention"] or "s3:DeleteObjectVersion" in used["erase"]
    tables = {**{r.name: r.aws_actions for r in EVENT_ROUTES}, **{j.name: j.aws_actions for j in SCHEDULED_JOBS},
              **{name: r.aws_actions for name, r in ROUTES_BY_NAME.items()}}  # fmt: skip
    used.pop("the test itself", None)
    for route, actions in used.items():
        assert set(actions) <= set(tables[route]), f"{route} calls {sorted(set(actions) - set(tables[route]))}"
