"""The route table: the one list of the API's routes, gathered from each context's own table.

The Lambda handlers (each looks itself up here), the local server, the OpenAPI document and the
CDK app (one function per route) all read this table; a route is never written down twice.
"""

from __future__ import annotations

from videocall.core.routing import EventRoute, Route
from videocall.meetings import routes as meetings

ROUTES: tuple[Route, ...] = meetings.ROUTES

ROUTES_BY_NAME = {route.name: route for route in ROUTES}

EVENT_ROUTES: tuple[EventRoute, ...] = (
    EventRoute(
        "chime_meeting_events", "Chime Meeting State Change", "handlers.chime_meeting_events",
        "Meeting state from Chime's own events (a meeting Chime ended is marked ended)",
    ),
)  # fmt: skip

__all__ = ["EVENT_ROUTES", "ROUTES", "ROUTES_BY_NAME", "EventRoute", "Route"]
