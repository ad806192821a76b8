"""The feedback context's routes."""

from __future__ import annotations

from videocall.core import errors as e
from videocall.core.routing import Route
from videocall.feedback.models import FeedbackResponse

ROUTES: tuple[Route, ...] = (
    Route(
        "give_feedback", "POST", "/meetings/{meetingId}/feedback", "handlers.give_feedback",
        "The post-call survey: rating 1-5, issues, a comment; a second answer replaces the first",
        FeedbackResponse, 200, errors=(e.MeetingNotFound,),
    ),
)  # fmt: skip
