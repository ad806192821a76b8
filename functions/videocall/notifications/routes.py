"""The notifications context's routes: a device registers (or refreshes) its FCM token, and removes it
on sign-out. Neither calls AWS: the functions that send pushes list core.routing.NOTIFY (the credential)."""

from __future__ import annotations

from videocall.core.errors import DeviceNotFound, InstallationInUse
from videocall.core.routing import Route
from videocall.notifications.models import DeviceResponse

ROUTES: tuple[Route, ...] = (
    Route(
        "put_device", "PUT", "/devices/{installationId}", "handlers.put_device",
        "Register or refresh this installation's push token (FCM) for the caller; an installation another "
        "user holds moves only with the device's current token (409 installation_in_use otherwise)",
        DeviceResponse, 200, errors=(InstallationInUse,),
    ),
    Route(
        "delete_device", "DELETE", "/devices/{installationId}", "handlers.delete_device",
        "Unregister the caller's own installation (sign-out): no more pushes to it", DeviceResponse, 200,
        errors=(DeviceNotFound,),
    ),
)  # fmt: skip
