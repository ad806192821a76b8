"""GET /meetings/{meetingId}/participants: everyone in the call with presence, what they may send, hands."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.controls.routes import ROUTES
from videocall.http import FirebaseUid, MeetingIdParam, RequestId, json_response, lambda_handler_for
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, uid: FirebaseUid, request_id: RequestId) -> Response[Any]:
    people = runtime().controls.participants(uid, meetingId, request_id)
    return json_response(200, {"meetingId": meetingId, "participants": people})


handler = lambda_handler_for("list_participants", ROUTES)
