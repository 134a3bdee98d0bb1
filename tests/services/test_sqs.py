"""Smoke test: ElasticMQ behaves as SQS does for a queue consumer (boto3, long polling)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.services.sqs import SqsServer

pytestmark = pytest.mark.sqs


def test_long_poll_visibility_timeout_and_delete(sqs: SqsServer) -> None:
    client = sqs.client()
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    url = client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "in/a"}}}]}
    client.send_message(QueueUrl=url, MessageBody=json.dumps(event))

    received = client.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10)
    messages = received["Messages"]
    assert [json.loads(message["Body"]) for message in messages] == [event]
    # Not deleted: it comes back once its visibility timeout (1 s) is over, long polling
    # waiting for it server-side.
    again = client.receive_message(
        QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert again[0]["MessageId"] == messages[0]["MessageId"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    client.delete_message(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"])
    # Deleted: a long poll now ends empty.
    assert not client.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages")
    client.delete_queue(QueueUrl=url)
