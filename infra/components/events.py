"""EventBridge rules, each to its own function with retries and a KMS-encrypted dead-letter queue that
an alarm watches:

- one rule per event route (videocall.routes.EVENT_ROUTES) on Chime's events (`aws.chime`, by
  detail-type): meeting state changes and media pipeline state changes;
- one schedule per scheduled job (videocall.routes.SCHEDULED_JOBS): the reconciler every minute and
  the retention job daily.

Each function gets its route's `aws_actions` through the IAM table (infra/components/iam.py). A new
EventRoute or ScheduledJob is wired here without further infra changes.

Event handlers get 256 MB / 30 s unless EVENT_ROUTE_SIZING names them: chime_pipeline_events builds
the transcript from the capture's files, then calls Comprehend Medical (eu-west-1, chunked, retried with
backoff) and Bedrock for the draft summary, all within one invocation: 512 MB / 120 s.

Jobs run with reserved concurrency 1, so a run never overlaps the previous one: a tick that arrives
while a run is still going waits in Lambda's async queue. A failed run of a job that ticks every few
minutes is not retried by Lambda (the next tick is the retry); a daily job is retried twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from videocall.routes import EVENT_ROUTES, SCHEDULED_JOBS

from infra.components.functions import FunctionFactory

# Delivery retries of a rule's target (EventBridge -> Lambda's async queue), then its DLQ.
RULE_RETRIES = 8
RULE_MAX_EVENT_AGE = Duration.hours(24)


@dataclass(frozen=True)
class Sizing:
    memory: int = 256
    timeout_seconds: int = 30


# Event routes that need more than the default, by route name (videocall.routes.EVENT_ROUTES).
EVENT_ROUTE_SIZING: dict[str, Sizing] = {
    "chime_pipeline_events": Sizing(memory=512, timeout_seconds=120),
}


def _dead_letter_queue(scope: Construct, name: str, key: kms.IKey, what: str) -> sqs.Queue:
    dlq = sqs.Queue(
        scope,
        f"{name}Dlq",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    NagSuppressions.add_resource_suppressions(
        dlq,
        [
            NagPackSuppression(
                id="AwsSolutions-SQS3",
                reason=f"{name}Dlq is itself the dead-letter queue of the {name} {what} and function; an alarm "
                "watches its depth",
            )
        ],
    )
    return dlq


class ChimeEvents(Construct):
    def __init__(self, scope: Construct, id: str, *, factory: FunctionFactory, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.functions: dict[str, lambda_.Function] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.rules: dict[str, events.Rule] = {}
        unknown = set(EVENT_ROUTE_SIZING) - {r.name for r in EVENT_ROUTES}
        if unknown:
            raise ValueError(f"EVENT_ROUTE_SIZING names no event route: {', '.join(sorted(unknown))}")
        for route in EVENT_ROUTES:
            dlq = _dead_letter_queue(self, route.name, key, "rule")
            sizing = EVENT_ROUTE_SIZING.get(route.name, Sizing())
            function = factory.make(
                route.name,
                route.handler,
                description=route.description,
                memory=sizing.memory,
                timeout=Duration.seconds(sizing.timeout_seconds),
                reserved_concurrency=10,
                aws_actions=route.aws_actions,
                dead_letter_queue=dlq,
            )
            # Async invocations that still fail after Lambda's own retries land here too.
            function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(6))
            rule = events.Rule(
                self,
                f"{route.name}Rule",
                description=route.description,
                event_pattern=events.EventPattern(source=["aws.chime"], detail_type=[route.detail_type]),
            )
            rule.add_target(
                targets.LambdaFunction(
                    function, dead_letter_queue=dlq, retry_attempts=RULE_RETRIES, max_event_age=RULE_MAX_EVENT_AGE
                )
            )
            self.functions[route.name] = function
            self.dead_letter_queues[route.name] = dlq
            self.rules[route.name] = rule


class ScheduledJobs(Construct):
    def __init__(self, scope: Construct, id: str, *, factory: FunctionFactory, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.functions: dict[str, lambda_.Function] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.rules: dict[str, events.Rule] = {}
        for job in SCHEDULED_JOBS:
            dlq = _dead_letter_queue(self, job.name, key, "schedule")
            function = factory.make(
                job.name,
                job.handler,
                description=job.description[:256],  # Lambda's limit for a description
                timeout=Duration.seconds(job.timeout_seconds),
                reserved_concurrency=1,  # never two runs at once
                aws_actions=job.aws_actions,
                dead_letter_queue=dlq,
            )
            frequent = _every_few_minutes(job.schedule)
            function.configure_async_invoke(
                retry_attempts=0 if frequent else 2,
                # Ticks queued behind a slow run: stale after a few periods (they then land in the DLQ,
                # whose alarm says the job cannot keep up).
                max_event_age=Duration.minutes(15) if frequent else Duration.hours(6),
            )
            rule = events.Rule(
                self,
                f"{job.name}Schedule",
                description=f"{job.name} {job.schedule}"[:512],
                schedule=events.Schedule.expression(job.schedule),
            )
            rule.add_target(
                targets.LambdaFunction(
                    function, dead_letter_queue=dlq, retry_attempts=RULE_RETRIES, max_event_age=RULE_MAX_EVENT_AGE
                )
            )
            self.functions[job.name] = function
            self.dead_letter_queues[job.name] = dlq
            self.rules[job.name] = rule


def _every_few_minutes(schedule: str) -> bool:
    """rate(N minute[s]) with N <= 5: the next run comes soon enough to be the retry."""
    match = re.fullmatch(r"rate\((\d+) minutes?\)", schedule.strip())
    return match is not None and int(match.group(1)) <= 5
