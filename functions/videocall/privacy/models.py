"""The privacy API's bodies (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from videocall.core.schema import GUID_PATTERN, StrictBody
from videocall.meetings.models import AppointmentId


class ErasureBody(StrictBody):
    appointmentId: AppointmentId | None = None
    patientId: Annotated[str, Field(pattern=GUID_PATTERN)] | None = None


class ErasureResponse(BaseModel):
    appointmentIds: list[str]
    deleted: dict[str, int] = Field(description="items deleted per kind of content (recordings, ...)")
    pseudonymizedPatient: bool
    nothingFound: bool = Field(description="true when a previous erasure already removed everything")


class LegalHoldBody(StrictBody):
    reference: Annotated[str, Field(min_length=1, max_length=200, description="a case reference, no clinical detail")]


class LegalHoldResponse(BaseModel):
    appointmentId: str
    held: bool
    reference: str | None = None
    placedBy: str | None = None
    placedAt: str | None = None


class PatientExport(BaseModel):
    patient: dict[str, Any]
    appointments: list[dict[str, Any]]
    meetings: list[dict[str, Any]]
    consent: list[dict[str, Any]]
    content: dict[str, list[dict[str, Any]]]
    devices: list[dict[str, Any]] = []  # push registrations: installation, platform, dates (never the FCM token)
    auditTrail: list[dict[str, Any]]


class AuditTrailResponse(BaseModel):
    patientId: str
    events: list[dict[str, Any]]
    nextBefore: int | None = Field(None, description="pass as ?before= for older events")
