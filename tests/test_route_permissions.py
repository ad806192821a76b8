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
