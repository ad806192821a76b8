"""Applies migrations/ on every deploy (a CDK trigger runs it; a failure fails the deploy)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from videocall.core.dbauth import connector
from videocall.core.migrate import apply_migrations
from videocall.core.observability import logger
from videocall.core.settings import get_settings


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    applied = apply_migrations(connector(get_settings()))
    logger.info("migrations applied", extra={"applied": applied})
    return {"applied": applied}
