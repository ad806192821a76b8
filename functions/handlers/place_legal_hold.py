"""PUT /admin/appointments/{appointmentId}/legal-hold {reference}: suspend deletion (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import AppointmentIdParam, caller, json_response, lambda_handler_for
from videocall.privacy.models import LegalHoldBody
from videocall.privacy.routes import ROUTES
from videocall.runtime import runtime


def endpoint(appointmentId: AppointmentIdParam, body: LegalHoldBody) -> Response[Any]:
    uid, request_id = caller()
    hold = runtime().privacy.place_hold(uid, appointmentId, body.reference, request_id)
    return json_response(200, {**hold, "held": True})


handler = lambda_handler_for("place_legal_hold", ROUTES)
