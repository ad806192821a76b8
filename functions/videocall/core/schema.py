"""Pieces every context's API models share: strict request bodies, the GUID pattern, the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

GUID_PATTERN = r"^[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}$"


def _whole(value: Any) -> Any:
    """JSON has one number type: 4.0 is the integer 4 (JSON Schema says so too); 4.5 and "4" stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def whole_numbers(*fields: str) -> Any:
    """In a strict body, integer fields that also take 4.0, as JSON Schema's "integer" does:
    `_whole = whole_numbers("rating")` in the model (a before-validator; the field keeps its schema)."""
    return field_validator(*fields, mode="before")(lambda cls, value: _whole(value))


class StrictBody(BaseModel):
    """A request body: strict types (a string where a boolean belongs is a 400), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
