"""A real Apache Kafka broker in KRaft mode (no ZooKeeper), from Maven Central's jars.

One process is both controller and broker (`process.roles=broker,controller`), on loopback
ports, with its log directory formatted by Kafka's own `StorageTool` before the first start.
MinIO's Kafka notification target and the S3-event bridge of issue 19 talk to it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import common, maven

NAME = "kafka"
KAFKA_VERSION = "4.4.0"
VERSION = f"kafka_2.13-{KAFKA_VERSION}"
COORDINATES = [f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}"]
START_TIMEOUT = 90.0
CLUSTER_ID = "b3NjYXItdGVzdGVudi0w"  # a fixed 16-byte base64 id: each run formats a fresh dir


def is_installed() -> bool:
    """Whether Kafka's jars are cached and java is on PATH."""
    return maven.is_resolved(NAME, VERSION)


def install() -> None:
    """Resolve the Kafka broker and its dependencies from Maven Central into the cache."""
    maven.resolve(NAME, VERSION, COORDINATES)


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker: `bootstrap` is what clients (and MinIO's target) connect to."""

    bootstrap: str
    port: int
    log: Path


def _properties(data_dir: Path, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=1",
            # One broker: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


def _java(*arguments: str) -> list[str]:
    return ["java", "-Xmx512m", "-cp", f"{maven.classpath_dir(NAME, VERSION)}/*", *arguments]


@contextmanager
def running(workdir: Path) -> Iterator[KafkaBroker]:
    """Format a log directory in `workdir` and run one KRaft broker until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, controller_port = common.free_port(), common.free_port()
    properties = workdir / "server.properties"
    properties.write_text(_properties(workdir / "data", port, controller_port))
    log = workdir / "kafka.log"
    format_storage = ("kafka.tools.StorageTool", "format", "--standalone", "-t", CLUSTER_ID)
    common.run(_java(*format_storage, "-c", str(properties)), timeout=120)
    with log.open("ab") as output:
        process = subprocess.Popen(
            _java("kafka.Kafka", str(properties)),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    broker = KafkaBroker(f"127.0.0.1:{port}", port, log)

    def answers_metadata() -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=2000)
        try:
            return admin.describe_cluster()["controller_id"] is not None
        finally:
            admin.close()

    try:
        common.wait_until(
            answers_metadata, timeout=START_TIMEOUT, what="Kafka", process=process, log=log
        )
        yield broker
    finally:
        common.stop_process(process, timeout=30)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A real Kafka broker shared by the session (tests use their own topics)."""
    common.require_installed(NAME, is_installed())
    with running(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker
