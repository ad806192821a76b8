"""The controls context's routes."""

from __future__ import annotations

from typing import Any

from videocall.controls import models
from videocall.controls.service import CannotModerateProvider, CannotRemoveYourself, ParticipantNotInMeeting, Waiting
from videocall.core import errors as e
from videocall.core.routing import NOTIFY, Route

# Who may: participants (404 for anyone else); clinical staff (403 for a patient). On one person:
# they must be in the meeting, and only the provider moderates the provider.
_PARTICIPANT = (e.MeetingNotFound,)
_CLINICAL = (e.MeetingNotFound, e.NotAClinicalController)
_ON_SOMEONE = (*_CLINICAL, ParticipantNotInMeeting, CannotModerateProvider)

ROUTES: tuple[Route, ...] = (
    Route(
        "list_participants", "GET", "/meetings/{meetingId}/participants", "handlers.list_participants",
        "Everyone in the call: role, presence, network type, what they may send, raised hand",
        models.ParticipantsResponse, 200, errors=_PARTICIPANT,
    ),
    Route(
        "update_participant", "PATCH", "/meetings/{meetingId}/participants/{userId}", "handlers.update_participant",
        "Mute or unmute, video and screen share off or on, enforced by Chime (clinical staff)",
        models.ParticipantChangeResponse, 200, ("chime:UpdateAttendeeCapabilities",),
        errors=(*_ON_SOMEONE, e.MeetingEnded),
    ),
    Route(
        "remove_participant", "DELETE", "/meetings/{meetingId}/participants/{userId}", "handlers.remove_participant",
        "Remove a participant; they cannot rejoin unless admitted again (clinical staff)",
        models.ParticipantChangeResponse, 200, ("chime:DeleteAttendee",),
        errors=(*_ON_SOMEONE, CannotRemoveYourself, e.MeetingEnded),
    ),
    Route(
        "mute_all", "POST", "/meetings/{meetingId}/participants/mute-all", "handlers.mute_all",
        "Mute everyone except the caller (and the appointment's provider); late joiners arrive muted",
        models.MuteAllResponse, 200,
        ("chime:BatchUpdateAttendeeCapabilitiesExcept", "chime:UpdateAttendeeCapabilities"),
        errors=(*_CLINICAL, e.MeetingEnded),
    ),
    Route(
        "get_lobby", "GET", "/meetings/{meetingId}/lobby", "handlers.get_lobby",
        "Who waits in the waiting room (clinical staff)", models.LobbyResponse, 200, errors=_CLINICAL,
    ),
    Route(
        "decide_lobby", "POST", "/meetings/{meetingId}/lobby/{userId}", "handlers.decide_lobby",
        "Admit or deny someone waiting (clinical staff); the admitted patient is notified",
        models.LobbyDecisionResponse, 200, NOTIFY, errors=_ON_SOMEONE,
    ),
    Route(
        "raise_hand", "POST", "/meetings/{meetingId}/hand", "handlers.raise_hand",
        "Raise the caller's hand", models.HandResponse, 200, errors=(*_PARTICIPANT, e.MeetingEnded),
    ),
    Route(
        "lower_hand", "DELETE", "/meetings/{meetingId}/hand", "handlers.lower_hand",
        "Lower the caller's hand", models.HandResponse, 200, errors=(*_PARTICIPANT, e.MeetingEnded),
    ),
)  # fmt: skip


def waiting_body(waiting: Waiting) -> tuple[dict[str, Any], dict[str, str]]:
    """202 for a patient in the lobby: no attendee, no JoinToken; ask again after Retry-After."""
    body = {
        "status": "waiting", "appointmentId": waiting.appointment_id, "meetingId": waiting.meeting_id,
        "retryAfterSeconds": waiting.retry_after_seconds,
    }  # fmt: skip
    return body, {"Retry-After": str(waiting.retry_after_seconds)}
