"""The notifications context's routes: a device registers (or refreshes) its FCM token, and removes it
on sign-out. Neither calls AWS: the functions that send pushes list core.routing.NOTIFY (the credential)."""

from __future__ import annotations

from videocall.core.errors import DeviceNotFound
from videocall.core.routing import Route
from videocall.notifications.models import DeviceResponse

ROUTES: tuple[Route, ...] = (
    Route(
        "put_device", "PUT", "/devices/{installationId}", "handlers.put_device",
        "Register or refresh this installation's push token (FCM) for the caller; an installation signed in "
        "as another user moves to that user", DeviceResponse, 200,
    ),
    Route(
        "delete_device", "DELETE", "/devices/{installationId}", "handlers.delete_device",
        "Unregister the caller's own installation (sign-out): no more pushes to it", DeviceResponse, 200,
        errors=(DeviceNotFound,),
    ),
)  # fmt: skip
