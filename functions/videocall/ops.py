"""Operator tools that act on AWS directly (run from a workstation with the stage's credentials).

redrive: events that landed in a dead-letter queue (an EventBridge rule's, or a function's async DLQ:
both keep the original event as the message body) are handed to their function again, one by one,
synchronously; a message is deleted only once the function has handled it. The handlers are
idempotent, so a message redriven twice changes nothing the second time. `aws sqs
start-message-move-task` cannot do this: it moves messages back only to an SQS source queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RedriveOutcome:
    redriven: int = 0
    failed: int = 0


def redrive(sqs: Any, lambda_client: Any, *, queue_url: str, function_name: str, limit: int = 1000) -> RedriveOutcome:
    outcome = RedriveOutcome()
    while outcome.redriven + outcome.failed < limit:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=120).get("Messages", [])  # fmt: skip
        if not batch:
            break
        for message in batch:
            response = lambda_client.invoke(
                FunctionName=function_name, InvocationType="RequestResponse", Payload=message["Body"].encode()
            )
            if response.get("FunctionError") or response.get("StatusCode", 500) >= 300:
                outcome.failed += 1  # stays in the queue (visible again after the timeout)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            outcome.redriven += 1
        if outcome.failed and not outcome.redriven:
            break  # the function still fails: stop rather than loop over the same messages
    return outcome
