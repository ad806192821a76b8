"""The API's request and response bodies (Pydantic), shared by the routes and the OpenAPI document.

Requests are strict: a string where a boolean belongs is a 400, not a silent conversion.
Response bodies keep Chime's own PascalCase `meeting` / `attendee` objects untouched, because the
app passes them straight to amazon-chime-sdk-js `new MeetingSessionConfiguration(meeting, attendee)`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool, field_validator

from videocall.core.languages import TRANSCRIPTION_LANGUAGES, TranscriptionLanguage
from videocall.core.schema import GUID_PATTERN, StrictBody

AppointmentId = Annotated[str, Field(pattern=r"^[-_a-zA-Z0-9]{2,64}$", description="The app's appointment id")]
MeetingId = Annotated[str, Field(pattern=GUID_PATTERN, description="The Chime MeetingId (a GUID)")]
UserId = Annotated[str, Field(min_length=1, max_length=64)]
MAX_BATCH_USERS = 250


class CreateMeetingBody(StrictBody):
    appointmentId: AppointmentId
    enableRecording: StrictBool = False
    enableTranscription: StrictBool = False
    transcriptionLanguage: TranscriptionLanguage = "en-US"
    waitingRoom: StrictBool | None = Field(
        None, description="The appointment's provider turns the waiting room on or off (patients wait to be admitted)"
    )


class AddAttendeesBody(StrictBody):
    # Duplicates are a 400 (the validator below), so the document says uniqueItems.
    userIds: Annotated[
        list[UserId], Field(min_length=1, max_length=MAX_BATCH_USERS, json_schema_extra={"uniqueItems": True})
    ]

    @field_validator("userIds")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("userIds has duplicates")
        return value


# --- the old single-endpoint contract: POST /chime-meeting-token {"action": ...} -------------------
class LegacyCreate(CreateMeetingBody):
    # The language is checked only when transcription is on (JSON Schema's if/then says so to clients).
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"enableTranscription": {"const": True}}, "required": ["enableTranscription"]},
        "then": {"properties": {"transcriptionLanguage": {"enum": list(TRANSCRIPTION_LANGUAGES)}}},
    })  # fmt: skip

    action: Literal["create"]
    # The old app sends a language with every create; it was checked only when transcription is on, and
    # still is (an unsupported one with transcription off must keep working: the app changes only its URL).
    transcriptionLanguage: Annotated[str, Field(min_length=2, max_length=16)] = "en-US"  # type: ignore[assignment]


class LegacyJoin(StrictBody):
    action: Literal["join"]
    meetingId: MeetingId


class LegacyBatchJoin(AddAttendeesBody):
    action: Literal["batch-join"]
    meetingId: MeetingId


class LegacyEnd(StrictBody):
    action: Literal["end"]
    meetingId: MeetingId


LegacyRequest = Annotated[LegacyCreate | LegacyJoin | LegacyBatchJoin | LegacyEnd, Field(discriminator="action")]


# --- responses ------------------------------------------------------------------------------------
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChimeMeeting(_Open):
    MeetingId: str
    ExternalMeetingId: str
    MediaRegion: str
    MediaPlacement: dict[str, str]
    MeetingFeatures: dict[str, Any] | None = None


class ChimeAttendee(_Open):
    AttendeeId: str
    ExternalUserId: str
    JoinToken: str | None = Field(None, description="A credential: absent for users added earlier (they join)")


class RecordingOnCreate(BaseModel):
    state: Literal["off", "waiting_for_consent", "starting", "on", "interrupted"]
    reason: str | None = Field(
        None, description="why not on: consent_required, clinician_only, recording_limit_reached, recording_unavailable"
    )


class MeetingJoinResponse(BaseModel):
    meeting: ChimeMeeting
    attendee: ChimeAttendee
    recordingEnabled: bool | None = Field(None, description="create only")
    transcriptionEnabled: bool | None = Field(None, description="create only")
    recording: RecordingOnCreate | None = Field(None, description="POST /meetings with enableRecording only")


class AddedAttendee(BaseModel):
    userId: str
    attendee: ChimeAttendee
    alreadyAdded: bool


class UserError(BaseModel):
    userId: str
    code: str
    message: str


class AddAttendeesResponse(BaseModel):
    meetingId: str
    attendees: list[AddedAttendee]
    errors: list[UserError]


class EndMeetingResponse(BaseModel):
    meetingId: str
    ended: Literal[True]
    endedAt: str
    alreadyEnded: bool


class LegacyResponse(RootModel[MeetingJoinResponse | AddAttendeesResponse | EndMeetingResponse]):
    """POST /chime-meeting-token answers by action: create and join a MeetingJoinResponse, batch-join an
    AddAttendeesResponse, end an EndMeetingResponse."""


class SessionAttendee(BaseModel):
    userId: str
    attendeeId: str
    addedAt: str


class MeetingStateResponse(BaseModel):
    meetingId: str
    appointmentId: str
    status: Literal["active", "ended", "failed"]
    recordingEnabled: bool
    recordingState: Literal["off", "waiting_for_consent", "starting", "on", "interrupted"] = Field(
        description="shown to every participant: the app displays that the call is being recorded"
    )
    transcriptionEnabled: bool
    transcriptionLanguage: str | None
    createdAt: str
    endedAt: str | None
    attendees: list[SessionAttendee]
