"""POST /meetings/{meetingId}/attendees: the caller's attendee in the meeting."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from videocall.http import FirebaseUid, MeetingIdParam, RequestId, json_response, lambda_handler_for
from videocall.meetings.routes import meeting_join_body
from videocall.runtime import runtime


def endpoint(meetingId: MeetingIdParam, uid: FirebaseUid, request_id: RequestId) -> Response[Any]:
    result = runtime().service.join_meeting(uid, meetingId, request_id)
    return json_response(200, meeting_join_body(result, with_flags=False))


handler = lambda_handler_for("join_meeting")
