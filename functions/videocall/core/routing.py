"""What a route is: the record each context's route table is made of (see videocall.routes)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class Route:
    name: str  # function and operation id: create_meeting
    method: str
    path: str  # API Gateway / OpenAPI syntax: /meetings/{meetingId}
    module: str  # handler module holding `endpoint` and `handler`
    summary: str
    response_model: type[BaseModel]
    status_code: int = 200
    # Which AWS actions the function's role needs beyond the database (read by the CDK app).
    chime_actions: tuple[str, ...] = ()

    @property
    def powertools_rule(self) -> str:
        return self.path.replace("{", "<").replace("}", ">")

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"


@dataclass(frozen=True)
class EventRoute:
    """An EventBridge rule on Chime's events and the function that handles them."""

    name: str
    detail_type: str
    module: str
    description: str

    @property
    def handler(self) -> str:
        return f"{self.module}.handler"
