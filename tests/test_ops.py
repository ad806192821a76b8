"""The DLQ redrive the runbook tells ops to use: SQS from moto, the function's invoke via Stubber."""

from __future__ import annotations

import json

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from videocall.ops import redrive


def test_redrive_hands_each_event_to_the_function_and_deletes_only_what_it_handled():
    events = [{"id": f"e{i}", "detail-type": "Chime Meeting State Change", "detail": {}} for i in range(3)]
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        for event in events:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        lambda_client = boto3.client("lambda", region_name="eu-central-1")
        with Stubber(lambda_client) as stubber:
            import io

            def ok() -> dict:
                return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(b"{}"), 2)}

            stubber.add_response("invoke", ok())
            stubber.add_response("invoke", {**ok(), "FunctionError": "Unhandled"})  # still failing: kept
            stubber.add_response("invoke", ok())
            outcome = redrive(sqs, lambda_client, queue_url=url, function_name="videocall-dev-chime-meeting-events",
                              limit=3)  # fmt: skip
        left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert (outcome.redriven, outcome.failed) == (2, 1)
    assert left["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # back in the queue after its timeout
