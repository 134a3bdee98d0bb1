"""Every example in fdl-examples/ runs on the embedded default as the README shows."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from PIL import Image

from oscar.models.fdl import load_fdl
from tests.fixtures.server import RunningServer, wait_object
from tests.fixtures.services import EXAMPLES_DIR

pytestmark = pytest.mark.slow


def _apply(server: RunningServer, example: str) -> list[str]:
    api = server.client()
    names = []
    for entry in load_fdl(next((EXAMPLES_DIR / example).glob("*.yaml"))).services:
        body = entry.service.model_dump(mode="json", by_alias=True)
        assert api.post("/system/services", json=body).status_code == 201
        names.append(entry.service.name)
    return names


def test_grayify(start_oscar: Callable[..., RunningServer]) -> None:
    server = start_oscar()
    _apply(server, "grayify")
    picture = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 30, 90)).save(picture, format="PNG")
    s3 = server.s3()
    s3.put_object(Bucket="grayify", Key="in/red.png", Body=picture.getvalue())
    gray = Image.open(io.BytesIO(wait_object(s3, "grayify", "out/red.png")))
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
    s3 = server.s3()
    s3.put_object(Bucket="workflow", Key="in/notes.txt", Body=b"one\ntwo\nthree\n")
    assert wait_object(s3, "workflow", "mid/notes.txt") == b"ONE\nTWO\nTHREE\n"
    assert wait_object(s3, "workflow", "out/notes.txt.lines").strip() == b"3"
