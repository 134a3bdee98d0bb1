"""Every example in fdl-examples/ runs on the embedded default as the README shows."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from PIL import Image

from oscar.models.fdl import load_fdl
from tests.fixtures.server import RunningServer
from tests.fixtures.services import EXAMPLES_DIR
from tests.services import common

pytestmark = pytest.mark.slow


def _apply(server: RunningServer, example: str) -> list[str]:
    api = server.client()
    names = []
    for entry in load_fdl(next((EXAMPLES_DIR / example).glob("*.yaml"))).services:
        body = entry.service.model_dump(mode="json", by_alias=True)
        assert api.post("/system/services", json=body).status_code == 201
        names.append(entry.service.name)
    return names


def _s3(server: RunningServer) -> Any:
    provider = server.client().get("/system/config").json()["minio_provider"]
    return boto3.client(
        "s3",
        endpoint_url=provider["endpoint"],
        aws_access_key_id=provider["access_key"],
        aws_secret_access_key=provider["secret_key"],
        region_name=provider["region"],
    )


def _wait_object(s3: Any, bucket: str, key: str) -> bytes:
    def fetch() -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return common.wait_until(fetch, timeout=90, interval=0.3, what=f"{bucket}/{key}")


def test_grayify(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    _apply(server, "grayify")
    picture = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 30, 90)).save(picture, format="PNG")
    s3 = _s3(server)
    s3.put_object(Bucket="grayify", Key="in/red.png", Body=picture.getvalue())
    gray = Image.open(io.BytesIO(_wait_object(s3, "grayify", "out/red.png")))
    assert gray.mode == "L"
    assert gray.size == (32, 16)


def test_cowsay_sync(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    _apply(server, "cowsay")
    answer = server.client().post("/run/cowsay", content=base64.b64encode(b"Moo from oscar"))
    assert answer.status_code == 200
    assert "< Moo from oscar >" in answer.text
    assert "(oo)" in answer.text


def test_two_step_workflow(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    assert _apply(server, "workflow") == ["wf-upper", "wf-count"]
    s3 = _s3(server)
    s3.put_object(Bucket="workflow", Key="in/notes.txt", Body=b"one\ntwo\nthree\n")
    assert _wait_object(s3, "workflow", "mid/notes.txt") == b"ONE\nTWO\nTHREE\n"
    assert _wait_object(s3, "workflow", "out/notes.txt.lines").strip() == b"3"
