"""The route table: the one list of the API's routes, gathered from each context's own table, plus
the event routes (EventBridge rules on Chime's events) and the scheduled jobs.

The local server, the OpenAPI document, the tests and the CDK app (one function per route) read this
table; a Lambda handler looks its route up in its own context's table (importing this one would import
every context into its cold start). A route is never written down twice.
"""

from __future__ import annotations

from videocall.chat import routes as chat
from videocall.consent import routes as consent
from videocall.controls import routes as controls
from videocall.core.routing import (
    CLINICAL_RECORD,
    DELETE_ATTACHMENTS,
    DELETE_RECORDINGS,
    LIST_RECORDINGS,
    NOTIFY,
    READ_RECORDINGS,
    STOP_RECORDING,
    EventRoute,
    Route,
    ScheduledJob,
)
from videocall.feedback import routes as feedback
from videocall.meetings import routes as meetings
from videocall.notifications import routes as notifications
from videocall.privacy import routes as privacy
from videocall.recordings import routes as recordings
from videocall.transcripts import routes as transcripts

ROUTES: tuple[Route, ...] = (
    meetings.ROUTES + recordings.ROUTES + transcripts.ROUTES + consent.ROUTES + privacy.ROUTES + controls.ROUTES
    + feedback.ROUTES + chat.ROUTES + notifications.ROUTES
)  # fmt: skip

ROUTES_BY_NAME = {route.name: route for route in ROUTES}

EVENT_ROUTES: tuple[EventRoute, ...] = (
    EventRoute(
        "chime_meeting_events", "Chime Meeting State Change", "handlers.chime_meeting_events",
        "The call's life from Chime: meeting started/ended, attendee presence; rings the call (push) and cancels "
        "the ring",
        (*STOP_RECORDING, *NOTIFY),
    ),
    EventRoute(
        "chime_pipeline_events", "Chime Media Pipeline State Change", "handlers.chime_pipeline_events",
        "Recording state from Chime's media pipeline events; artifacts recorded when they land; the transcript "
        "and clinical record built from them",
        (*LIST_RECORDINGS, *READ_RECORDINGS, *DELETE_RECORDINGS, *CLINICAL_RECORD),
    ),
)  # fmt: skip

SCHEDULED_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob(
        "reconcile", "rate(1 minute)", "handlers.reconcile",
        "Ends meetings left empty with a recording running, closes meetings Chime ended without an event, "
        "finishes or fails recordings stuck in a state",
        ("chime:GetMeeting", "chime:DeleteMeeting", "chime:DeleteMediaCapturePipeline", "chime:GetMediaPipeline",
         "chime:CreateMediaCapturePipeline", "iam:PassRole", "s3:GetBucketPolicy",
         *LIST_RECORDINGS, *READ_RECORDINGS, *DELETE_RECORDINGS, *CLINICAL_RECORD),
        timeout_seconds=300,
    ),
    ScheduledJob(
        "apply_retention", "cron(15 2 * * ? *)", "handlers.apply_retention",
        "Deletes content past its retention (every object version), except under a legal hold",
        (*DELETE_RECORDINGS, *DELETE_ATTACHMENTS), timeout_seconds=900,
    ),
)  # fmt: skip

__all__ = ["EVENT_ROUTES", "ROUTES", "ROUTES_BY_NAME", "SCHEDULED_JOBS", "EventRoute", "Route", "ScheduledJob"]
