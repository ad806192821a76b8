"""Migrations on deploy: the same runner as `videocall migrate`, in a function a CDK trigger invokes
after the database is ready. The trigger re-runs whenever the function changes, and migrations/ is
part of its code, so every deploy that brings a migration applies it; a failing migration fails the
invocation, the custom resource, and so the deploy (CloudFormation rolls back). The app's functions
are updated after the trigger (`before`): a deploy that adds a column and the code that reads it never
runs the new code against the old schema, even for the seconds between the two."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, triggers
from constructs import Construct

from infra.components.functions import FunctionFactory


class MigrationsOnDeploy(Construct):
    def __init__(
        self, scope: Construct, id: str, *, factory: FunctionFactory, after: list[Construct],
        before: Sequence[Construct] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(scope, id)
        self.function = factory.make(
            "migrate_database",
            "handlers.migrate_database.handler",
            description="Applies migrations/ on deploy",
            timeout=Duration.minutes(5),
            reserved_concurrency=1,
        )
        self.trigger = triggers.Trigger(
            self,
            "Trigger",
            handler=self.function,
            execute_after=after,
            execute_before=list(before or []),
            execute_on_handler_change=True,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=Duration.minutes(5),
        )
