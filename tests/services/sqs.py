"""A real SQS-compatible server: ElasticMQ (Maven Central), the queue S3 event notifications go to.

ElasticMQ speaks the SQS query and JSON protocols, so boto3's SQS client talks to it unchanged.
It runs in memory: a queue and its messages live as long as the server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import common, maven

NAME = "sqs"
ELASTICMQ_VERSION = "1.7.1"
VERSION = f"elasticmq-{ELASTICMQ_VERSION}"
COORDINATES = [f"org.elasticmq:elasticmq-server_2.13:{ELASTICMQ_VERSION}"]
MAIN_CLASS = "org.elasticmq.server.Main"
REGION = "us-east-1"
ACCESS_KEY = "sqs-test"  # ElasticMQ accepts any credentials; boto3 insists on some
SECRET_KEY = "sqs-test-secret"
START_TIMEOUT = 60.0


def is_installed() -> bool:
    """Whether ElasticMQ's jars are cached and java is on PATH."""
    return maven.is_resolved(NAME, VERSION)


def install() -> None:
    """Resolve ElasticMQ's server and its dependencies from Maven Central into the cache."""
    maven.resolve(NAME, VERSION, COORDINATES)


@dataclass(frozen=True)
class SqsServer:
    """A running ElasticMQ: its endpoint, and boto3 clients for it."""

    endpoint: str
    port: int
    log: Path

    def client(self) -> Any:
        """A boto3 SQS client for this server."""
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


def _config(port: int) -> str:
    return (
        'include classpath("application.conf")\n'
        f'node-address {{ protocol = http, host = "127.0.0.1", port = {port},'
        ' context-path = "" }\n'
        f'rest-sqs {{ enabled = true, bind-port = {port}, bind-hostname = "127.0.0.1",'
        " sqs-limits = strict }\n"
        "rest-stats { enabled = false }\n"
    )


@contextmanager
def running(workdir: Path) -> Iterator[SqsServer]:
    """Run ElasticMQ on a free loopback port until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = common.free_port()
    config = workdir / "elasticmq.conf"
    config.write_text(_config(port))
    log = workdir / "elasticmq.log"
    command = [
        "java",
        "-Xmx256m",
        f"-Dconfig.file={config}",
        "-cp",
        f"{maven.classpath_dir(NAME, VERSION)}/*",
        MAIN_CLASS,
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=workdir)
    server = SqsServer(f"http://127.0.0.1:{port}", port, log)

    def lists_queues() -> bool:
        answer = httpx.post(server.endpoint, data={"Action": "ListQueues"}, timeout=1)
        return answer.status_code == 200 and b"ListQueuesResponse" in answer.content

    try:
        common.wait_until(
            lists_queues, timeout=START_TIMEOUT, what="ElasticMQ", process=process, log=log
        )
        yield server
    finally:
        common.stop_process(process)


@pytest.fixture(scope="session")
def sqs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    """A real SQS server shared by the session (tests use their own queues)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("sqs")) as server:
        yield server
