"""EventBridge rules on Chime's events, one per event route (videocall.routes.EVENT_ROUTES), each to its
function with retries and a KMS-encrypted dead-letter queue that an alarm watches.

`Chime Media Pipeline State Change` gets its rule when its handler lands (recording issue): add an
EventRoute and it is wired here without further infra changes.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct
from videocall.routes import EVENT_ROUTES

from infra.components.functions import FunctionFactory


class ChimeEvents(Construct):
    def __init__(self, scope: Construct, id: str, *, factory: FunctionFactory, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.functions: dict[str, lambda_.Function] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for route in EVENT_ROUTES:
            dlq = sqs.Queue(
                self,
                f"{route.name}Dlq",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            function = factory.make(
                route.name,
                route.handler,
                description=route.description,
                memory=256,
                timeout=Duration.seconds(30),
                reserved_concurrency=10,
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
                    function, dead_letter_queue=dlq, retry_attempts=8, max_event_age=Duration.hours(24)
                )
            )
            self.functions[route.name] = function
            self.dead_letter_queues[route.name] = dlq
            NagSuppressions.add_resource_suppressions(
                dlq,
                [
                    NagPackSuppression(
                        id="AwsSolutions-SQS3",
                        reason=f"{route.name}Dlq is itself the dead-letter queue of the {route.name} rule "
                        "and function; an alarm watches its depth",
                    )
                ],
            )
