"""Pieces every context's API models share: strict request bodies, the GUID pattern, the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

GUID_PATTERN = r"^[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}$"


class StrictBody(BaseModel):
    """A request body: strict types (a string where a boolean belongs is a 400), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
