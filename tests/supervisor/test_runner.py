"""The script runner: everything a script starts ends with it, and nothing can hang it."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest

from supervisor.errors import ScriptTimeoutError
from supervisor.runner import run_script
from tests.fixtures.processes import alive_with


def _sleeper() -> str:
    return f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"


def _script(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.sh"
    path.write_text(text)
    return path


def test_detached_children_are_killed_when_the_script_exits(tmp_path: Path) -> None:
    sub, sess, double = _sleeper(), _sleeper(), _sleeper()
    script = _script(
        tmp_path,
        f"(sleep {sub} >/dev/null 2>&1 &)\n"
        f"setsid sleep {sess} >/dev/null 2>&1 &\n"
        f"sh -c 'sh -c \"sleep {double}\" >/dev/null 2>&1 &' &\n"
        "echo done\n",
    )
    output = io.BytesIO()
    run_script(script, {"PATH": "/usr/bin:/bin"}, tmp_path, output)
    assert output.getvalue() == b"done\n"
    assert alive_with(sub) == [] and alive_with(sess) == [] and alive_with(double) == []


def test_a_background_child_holding_stdout_does_not_hang_the_script(tmp_path: Path) -> None:
    held = _sleeper()
    script = _script(tmp_path, f"sleep {held} &\necho started\n")
    begun = time.monotonic()
    run_script(script, {"PATH": "/usr/bin:/bin"}, tmp_path, io.BytesIO(), timeout=30)
    assert time.monotonic() - begun < 15  # returns when the script does, not at the timeout
    assert alive_with(held) == []


def test_a_timeout_kills_detached_children_too(tmp_path: Path) -> None:
    sess = _sleeper()
    script = _script(tmp_path, f"setsid sleep {sess} >/dev/null 2>&1 &\nexec sleep 600\n")
    with pytest.raises(ScriptTimeoutError):
        run_script(script, {"PATH": "/usr/bin:/bin"}, tmp_path, io.BytesIO(), timeout=1)
    assert alive_with(sess) == []
