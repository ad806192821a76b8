"""Every route x every kind of caller x {their own appointment, someone else's}, in one table.

The callers are named by their relation to the appointment a request is about: its provider, its
patient, another appointment's patient, another appointment's provider, an admin, a user with a valid
token who is not in the database, and nobody (no token). Each route is called on both of two
appointments (appt_123: Dr Lee and Ms Kim; appt_other: Dr Other and Ms Outsider), so every person is
both "the provider/patient" of one and "the other provider/patient" of the next.

The table is keyed by the route table (`videocall.routes.ROUTES`): a route without a row fails the
coverage test, so a new route cannot be forgotten. Paths are built from each route's own path; only
bodies and expectations are written here. No answer to a caller who may not see an appointment
carries anything of it (its meeting, people, message or attachment). This is the README's "Who may
do what".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from conftest import PROJECT, Api, Person, Reply, World, add_appointment, add_user
from test_chat import attach, new_meeting, post
from test_recordings import GRANTED
from videocall.local.devtools import emulator_id_token
from videocall.routes import ROUTES

RELATIONS = ("provider", "patient", "other_patient", "other_provider", "admin", "unregistered", "nobody")
Cell = tuple[int, str | None]

U: Cell = (401, "user_not_registered")
N: Cell = (401, "token_missing")
NOT_FOUND: Cell = (404, "meeting_not_found")
NOT_A_PARTICIPANT: Cell = (403, "not_a_participant")
NOT_UPLOADED: Cell = (409, "attachment_not_uploaded")
NO_DEVICE: Cell = (404, "device_not_found")
IN_USE: Cell = (409, "installation_in_use")


def participants(ok: int = 200, patient: Cell | None = None) -> tuple[Cell, ...]:
    """The appointment's provider and patient (and people added to the meeting); outsiders meet the 404."""
    return ((ok, None), patient or (ok, None), NOT_FOUND, NOT_FOUND, NOT_FOUND, U, N)


def clinical(ok: Cell = (200, None)) -> tuple[Cell, ...]:
    """The appointment's provider (and staff the provider added); a patient gets 403, outsiders the 404."""
    return (ok, (403, "not_a_clinical_controller"), NOT_FOUND, NOT_FOUND, NOT_FOUND, U, N)


def admins(ok: Cell = (200, None)) -> tuple[Cell, ...]:
    return ((403, "admin_only"),) * 4 + (ok, U, N)


def appointment(provider: Cell, patient: Cell) -> tuple[Cell, ...]:
    """Appointment-level routes: outsiders (admins included: no implicit access) get 403 not_a_participant."""
    return (provider, patient, NOT_A_PARTICIPANT, NOT_A_PARTICIPANT, NOT_A_PARTICIPANT, U, N)


# route -> expected (status, code) per relation, in RELATIONS' order; None code = success
MATRIX: dict[str, tuple[Cell, ...]] = {
    # meetings
    "create_meeting": appointment((200, None), (200, None)),  # the live meeting, with the caller's attendee
    "join_meeting": participants(),
    "add_attendees": ((200, None), (403, "not_allowed_to_add_attendees"), NOT_FOUND, NOT_FOUND, NOT_FOUND, U, N),
    "end_meeting": ((200, None), (403, "not_allowed_to_end"), NOT_FOUND, NOT_FOUND, NOT_FOUND, U, N),
    "get_meeting": participants(),
    "chime_meeting_token": participants(),  # the old contract's join
    # recordings and transcripts
    "start_recording": clinical(),
    "stop_recording": clinical(),
    "get_recordings": participants(),
    "start_transcription": clinical(),
    "stop_transcription": clinical(),
    # the transcript is for clinical staff (the patient only by setting): the patient answers as an outsider
    "get_transcript": participants(patient=NOT_FOUND),
    # the provider passes and meets the next rule: there is no draft to review
    "review_summary": clinical((400, "invalid_request")),
    # consent
    "put_consent": appointment((403, "not_allowed_to_record_consent"), (200, None)),
    "get_consent": appointment((200, None), (200, None)),
    # privacy: admins only
    "export_patient": admins(),
    "patient_audit_trail": admins(),
    "place_legal_hold": admins(),
    "lift_legal_hold": admins(),
    "erase": admins((409, "meeting_in_progress")),  # the admin passes and meets the next rule: a live meeting
    # chat (the attachment was never uploaded: those who may see it meet the next rule)
    "post_message": participants(201),
    "list_messages": participants(),
    "mark_messages_read": participants(),
    "put_reaction": participants(),
    "delete_reaction": participants(),
    "create_attachment": participants(201),
    "get_attachment": (NOT_UPLOADED, NOT_UPLOADED, NOT_FOUND, NOT_FOUND, NOT_FOUND, U, N),
    # controls and feedback
    "list_participants": participants(),
    "update_participant": clinical(),
    "remove_participant": clinical(),
    "mute_all": clinical(),
    "get_lobby": clinical(),
    "decide_lobby": clinical(),
    "raise_hand": participants(),
    "lower_hand": participants(),
    "give_feedback": participants(),
    # devices belong to a user: the installation is the appointment's patient's. Only its holder refreshes it
    # (another user needs the device's current FCM token to move it: a shared phone signed in again), and
    # only its owner removes it.
    "put_device": (IN_USE, (200, None), IN_USE, IN_USE, IN_USE, U, N),
    "delete_device": (NO_DEVICE, (200, None), NO_DEVICE, NO_DEVICE, NO_DEVICE, U, N),
}

_MESSAGE = "Penicillin gave me a rash last spring"  # patient data: never shown to anyone outside


@dataclass
class Side:
    """One appointment and what it holds: a live meeting both joined, a message with an attachment, consent,
    and the patient's phone registered for notifications."""

    appointment_id: str
    provider: Person
    patient: Person
    meeting_id: str = ""
    message_id: str = ""
    attachment_id: str = ""
    installation_id: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.meeting_id, self.patient.id, self.provider.id, self.message_id, self.attachment_id, _MESSAGE,
                self.patient.name, self.provider.name)  # fmt: skip


def _furnish(api: Api, side: Side) -> None:
    assert api.put(f"/appointments/{side.appointment_id}/consent", GRANTED, token=side.patient.token).status == 200
    people = World(side.provider, side.patient, side.provider, side.provider, side.patient, side.appointment_id)
    side.meeting_id = new_meeting(api, people, side.appointment_id)
    side.attachment_id = attach(api, side.meeting_id, side.patient.token, uploaded=False)
    reply = post(api, side.meeting_id, side.patient.token, _MESSAGE, attachmentId=side.attachment_id)
    side.message_id = reply.body["messageId"]
    side.installation_id = f"{side.appointment_id.replace('_', '-')}-patient-phone"
    registered = api.put(f"/devices/{side.installation_id}", {"fcmToken": f"fcm-{side.appointment_id}-0123456789",
                                                               "platform": "android"}, token=side.patient.token)  # fmt: skip
    assert registered.status == 200, registered.body


@pytest.fixture
def sides(api: Api, world: World, clean_db: str) -> tuple[Side, Side, dict[str, str]]:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        other_provider = add_user(conn, "fb-dr-other", "provider", "Dr Olwen Other")
        admin = add_user(conn, "fb-admin", "admin", "Admin Person")
        add_appointment(conn, "appt_other", other_provider, world.outsider)
    mine, theirs = Side("appt_123", world.provider, world.patient), Side("appt_other", other_provider, world.outsider)
    for side in (mine, theirs):
        _furnish(api, side)
    tokens = {"admin": admin.token, "unregistered": emulator_id_token("fb-not-registered", PROJECT)}
    return mine, theirs, tokens


# What each route is sent: its path filled from the appointment's things; a body where it takes one.
BODIES: dict[str, Callable[[Side], Any]] = {
    "create_meeting": lambda s: {"appointmentId": s.appointment_id},
    "add_attendees": lambda s: {"userIds": [s.patient.id]},
    "chime_meeting_token": lambda s: {"action": "join", "meetingId": s.meeting_id},
    "put_consent": lambda s: GRANTED,
    "place_legal_hold": lambda s: {"reference": "case 7"},
    "erase": lambda s: {"appointmentId": s.appointment_id},
    "post_message": lambda s: {"clientMessageId": "matrix-1", "text": "hello"},
    "mark_messages_read": lambda s: {"upTo": s.message_id},
    "put_reaction": lambda s: {"emoji": "\U0001f44d"},
    "create_attachment": lambda s: {"fileName": "x-ray.png", "contentType": "image/png", "size": 10},
    "update_participant": lambda s: {"audio": "off"},
    "decide_lobby": lambda s: {"decision": "admit"},
    "give_feedback": lambda s: {"rating": 5},
    "put_device": lambda s: {"fcmToken": "fcm-caller-0123456789", "platform": "ios"},
}


def _path(template: str, side: Side) -> str:
    values = {"meetingId": side.meeting_id, "appointmentId": side.appointment_id, "patientId": side.patient.id,
              "userId": side.patient.id, "messageId": side.message_id, "attachmentId": side.attachment_id,
              "installationId": side.installation_id}  # fmt: skip
    return template.format(**values)


def _caller(relation: str, side: Side, other: Side, tokens: dict[str, str]) -> str | None:
    return {
        "provider": side.provider.token, "patient": side.patient.token, "other_patient": other.patient.token,
        "other_provider": other.provider.token, "admin": tokens["admin"], "unregistered": tokens["unregistered"],
        "nobody": None,
    }[relation]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_every_route_answers_every_caller_on_their_own_and_someone_elses_appointment(
    api: Api, sides: tuple[Side, Side, dict[str, str]], route: Any
):
    mine, theirs, tokens = sides
    expected = dict(zip(RELATIONS, MATRIX[route.name], strict=True))
    # Refusals first, successes last: a success may change what the next caller meets (an end, a removal).
    order = sorted(RELATIONS, key=lambda r: expected[r][0] < 300)
    for side, other in ((mine, theirs), (theirs, mine)):
        for relation in order:
            body = BODIES[route.name](side) if route.name in BODIES else None
            reply: Reply = api.call(route.method, _path(route.path, side), body,
                                    token=_caller(relation, side, other, tokens))  # fmt: skip
            where = f"{route.name} on {side.appointment_id} as {relation}"
            assert (reply.status, reply.code) == expected[relation], f"{where}: {reply.body}"
            if reply.status >= 400 or relation in ("other_patient", "other_provider", "unregistered", "nobody"):
                leaked = [s for s in side.secrets if s and s in str(reply.body)]
                assert not leaked, f"{where} answered with the appointment's {leaked}"


def test_the_matrix_covers_every_route():
    assert set(MATRIX) == {r.name for r in ROUTES}
    assert all(len(cells) == len(RELATIONS) for cells in MATRIX.values())
