"""POST /admin/erasures {appointmentId | patientId}: GDPR erasure (admin); answers with counts."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import caller, json_response, lambda_handler_for
from videocall.privacy.models import ErasureBody
from videocall.privacy.routes import ROUTES
from videocall.runtime import runtime


def endpoint(body: ErasureBody) -> Response[Any]:
    uid, request_id = caller()
    result = runtime().privacy.erase(
        uid, appointment_id=body.appointmentId, patient_id=body.patientId, request_id=request_id
    )
    return json_response(
        200,
        {
            "appointmentIds": result.appointment_ids,
            "deleted": result.deleted,
            "pseudonymizedPatient": result.pseudonymized_patient,
            "nothingFound": result.nothing_found,
        },
    )


handler = lambda_handler_for("erase", ROUTES)
