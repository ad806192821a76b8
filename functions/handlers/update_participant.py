"""PATCH /meetings/{meetingId}/participants/{userId}: mute / unmute, video and screen share off / on
(clinical staff), enforced by Chime."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.models import CapabilitiesBody
from videocall.controls.routes import ROUTES
from videocall.http import MeetingIdParam, UserIdParam, caller, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, userId: UserIdParam, body: CapabilitiesBody) -> Response[Any]:
    uid, request_id = caller()
    return json_response(200, runtime().controls.set_allowed(uid, meetingId, userId, body.change(), request_id))


handler = lambda_handler_for("update_participant", ROUTES)
