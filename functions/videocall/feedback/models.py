"""The feedback API's bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from videocall.core.schema import StrictBody, whole_numbers

Issue = Literal["audio", "video", "connection", "other"]
ISSUES: tuple[str, ...] = ("audio", "video", "connection", "other")
MAX_COMMENT = 1000


class FeedbackBody(StrictBody):
    rating: Annotated[int, Field(ge=1, le=5)]
    _whole = whole_numbers("rating")
    issues: Annotated[list[Issue], Field(max_length=len(ISSUES), json_schema_extra={"uniqueItems": True})] = []
    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None

    @field_validator("issues")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("issues has duplicates")
        return value


class FeedbackResponse(BaseModel):
    meetingId: str
    rating: int
    issues: list[Issue]
    hasComment: bool
    replaced: bool = Field(description="true when this answer replaced an earlier one")
    updatedAt: str
