"""GET /appointments/{appointmentId}/consent: the patient's consent, for the appointment's participants."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.consent.routes import ROUTES
from videocall.http import AppointmentIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(appointmentId: AppointmentIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().consent.get(uid, appointmentId, request_id).body())


handler = lambda_handler_for("get_consent", ROUTES)
