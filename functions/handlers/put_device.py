"""PUT /devices/{installationId}: register or refresh the caller's push token for this installation."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import caller, json_response, lambda_handler_for
from videocall.notifications.models import DeviceBody, InstallationIdParam
from videocall.notifications.routes import ROUTES
from videocall.runtime import runtime


def endpoint(installationId: InstallationIdParam, body: DeviceBody) -> Response[Any]:
    uid, request_id = caller()
    device = runtime().notifications.register_device(
        uid, installationId, fcm_token=body.fcmToken, platform=body.platform, request_id=request_id
    )
    return json_response(200, device)


handler = lambda_handler_for("put_device", ROUTES)
