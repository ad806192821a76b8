"""DELETE /admin/appointments/{appointmentId}/legal-hold: lift a legal hold (admin; idempotent)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import AppointmentIdParam, caller, json_response, lambda_handler_for
from videocall.privacy.routes import ROUTES
from videocall.runtime import runtime


def endpoint(appointmentId: AppointmentIdParam) -> Response[Any]:
    uid, request_id = caller()
    runtime().privacy.lift_hold(uid, appointmentId, request_id)
    return json_response(200, {"appointmentId": appointmentId, "held": False})


handler = lambda_handler_for("lift_legal_hold", ROUTES)
