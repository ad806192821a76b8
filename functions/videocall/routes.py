"""The route table: the one list of the API's routes.

The Lambda handlers (each looks itself up here), the local server, the OpenAPI document and the
CDK app (one function per route) all read this table; a route is never written down twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import models


@dataclass(frozen=True)
class Route:
    name: str  # function and operation id: create_meeting
    method: str
    path: str  # API Gateway / OpenAPI syntax: /meetings/{meetingId}
    module: str  # handler module holding `endpoint` and `handler`
    summary: str
    response_model: type[BaseModel]
    status_code: int = 200
    # Which AWS actions the function's role needs beyond the database (read by the CDK app).
    chime_actions: tuple[str, ...] = ()

    @property
    def powertools_rule(self) -> str:
        return self.path.replace("{", "<").replace("}", ">")

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


ROUTES: tuple[Route, ...] = (
    Route(
        "create_meeting", "POST", "/meetings", "handlers.create_meeting",
        "Create the appointment's meeting, or return its live one, with the caller's attendee",
        models.MeetingJoinResponse, 201,
        ("chime:CreateMeeting", "chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee",
         "chime:DeleteMeeting"),
    ),
    Route(
        "join_meeting", "POST", "/meetings/{meetingId}/attendees", "handlers.join_meeting",
        "Join a meeting: the caller's attendee", models.MeetingJoinResponse, 200,
        ("chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee"),
    ),
    Route(
        "add_attendees", "POST", "/meetings/{meetingId}/attendees/batch", "handlers.add_attendees",
        "Add several users to a meeting (group calls)", models.AddAttendeesResponse, 200,
        ("chime:BatchCreateAttendee",),
    ),
    Route(
        "end_meeting", "DELETE", "/meetings/{meetingId}", "handlers.end_meeting",
        "End a meeting for everyone", models.EndMeetingResponse, 200, ("chime:DeleteMeeting",),
    ),
    Route(
        "get_meeting", "GET", "/meetings/{meetingId}", "handlers.get_meeting",
        "A meeting's state, for its participants", models.MeetingStateResponse, 200,
    ),
    Route(
        "chime_meeting_token", "POST", "/chime-meeting-token", "handlers.chime_meeting_token",
        "The app's original endpoint: {action: create | join | batch-join | end}", models.MeetingJoinResponse, 200,
        ("chime:CreateMeeting", "chime:CreateAttendee", "chime:GetAttendee", "chime:DeleteAttendee",
         "chime:BatchCreateAttendee", "chime:DeleteMeeting"),
    ),
)  # fmt: skip

ROUTES_BY_NAME = {route.name: route for route in ROUTES}


@dataclass(frozen=True)
class EventRoute:
    """An EventBridge rule on Chime's events and the function that handles them."""

    name: str
    detail_type: str
    module: str
    description: str

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


EVENT_ROUTES: tuple[EventRoute, ...] = (
    EventRoute(
        "chime_meeting_events", "Chime Meeting State Change", "handlers.chime_meeting_events",
        "Meeting state from Chime's own events (a meeting Chime ended is marked ended)",
    ),
)  # fmt: skip
