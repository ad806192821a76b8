"""PUT /appointments/{appointmentId}/consent: the patient records consent; a withdrawal stops recording,
a grant starts a recording the clinician asked for."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall import workflows
from videocall.consent.models import ConsentBody
from videocall.consent.routes import ROUTES
from videocall.http import AppointmentIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(appointmentId: AppointmentIdParam, body: ConsentBody) -> Response[Any]:
    uid, request_id = caller()
    decisions: dict[str, str] = {
        "recording": body.recording,
        "transcription": body.transcription,
        "ai_processing": body.aiProcessing,
    }
    outcome = workflows.record_consent(runtime(), uid, appointmentId, decisions, request_id)
    return json_response(
        200,
        {
            **outcome.change.consent.body(),
            "recordingsStopped": outcome.recordings_stopped,
            "recordingsStarted": outcome.recordings_started,
        },
    )


handler = lambda_handler_for("put_consent", ROUTES)
