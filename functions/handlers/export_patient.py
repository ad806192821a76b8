"""GET /admin/patients/{patientId}/export: the right of access, one JSON document (admin)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import PatientIdParam, caller, json_response, lambda_handler_for
from videocall.privacy.routes import ROUTES
from videocall.runtime import runtime


def endpoint(patientId: PatientIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().privacy.export_patient(uid, patientId, request_id))


handler = lambda_handler_for("export_patient", ROUTES)
