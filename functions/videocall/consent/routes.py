"""The consent context's routes."""

from __future__ import annotations

from videocall.consent.models import ConsentResponse
from videocall.core import errors as e
from videocall.core.routing import START_RECORDING, STOP_RECORDING, Route

ROUTES: tuple[Route, ...] = (
    Route(
        "put_consent", "PUT", "/appointments/{appointmentId}/consent", "handlers.put_consent",
        "Record the patient's consent (recording, transcription, AI processing); a withdrawal stops recording",
        ConsentResponse, 200,
        (*START_RECORDING, *STOP_RECORDING, "chime:StartMeetingTranscription", "chime:StopMeetingTranscription"),
        errors=(e.NotAParticipant, e.NotAllowedToRecordConsent),
    ),
    Route(
        "get_consent", "GET", "/appointments/{appointmentId}/consent", "handlers.get_consent",
        "The patient's consent, for the appointment's participants", ConsentResponse, 200,
        errors=(e.NotAParticipant,),
    ),
)  # fmt: skip
