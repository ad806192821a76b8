"""GET /admin/patients/{patientId}/audit-trail?before=&limit=: the patient's audit trail (admin)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from videocall.http import PatientIdParam, caller, json_response, lambda_handler_for
from videocall.privacy.routes import ROUTES
from videocall.runtime import runtime


def endpoint(
    patientId: PatientIdParam,
    # 2**53: a bound every JSON reader holds exactly (2**63 - 1 became a float 2**63); ids never get there
    before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response[Any]:
    uid, request_id = caller()
    events = runtime().privacy.audit_trail(uid, patientId, before_id=before, limit=limit, request_id=request_id)
    next_before = events[-1]["id"] if len(events) == limit else None
    return json_response(200, {"patientId": patientId, "events": events, "nextBefore": next_before})


handler = lambda_handler_for("patient_audit_trail", ROUTES)
