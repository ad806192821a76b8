"""DELETE /devices/{installationId}: the caller signs out on this installation; no more pushes to it."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import caller, json_response, lambda_handler_for
from videocall.notifications.models import InstallationIdParam
from videocall.notifications.routes import ROUTES
from videocall.runtime import runtime


def endpoint(installationId: InstallationIdParam) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().notifications.unregister_device(uid, installationId, request_id))


handler = lambda_handler_for("delete_device", ROUTES)
