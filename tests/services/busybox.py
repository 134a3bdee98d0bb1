"""Debian's `busybox-static`: one statically linked `/bin/busybox` with every applet in it.

Not a server: the self-contained supervisor's tests (`tests/supervisor/test_self_contained.py`)
build job roots from it that hold a shell and the usual tools but no libc, no dynamic loader
and no Python, as an Alpine/BusyBox or distroless job image does. `make_root` lays out such a
root; `install()` apt-installs the package.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

from tests.services import common

NAME = "busybox"
VERSION = "debian-busybox-static"
PACKAGE = "busybox-static"
BUSYBOX = Path("/bin/busybox")
PT_INTERP = 3  # the program header naming an ELF program's dynamic loader


def is_static_elf(path: Path) -> bool:
    """Whether `path` is a 64-bit ELF program with no dynamic loader (no PT_INTERP header)."""
    with path.open("rb") as handle:
        header = handle.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
            return False
        # ELF64 header: e_phoff at 0x20, e_phentsize and e_phnum at 0x36 (little-endian x86-64).
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        entry_size, count = struct.unpack_from("<HH", header, 0x36)
        handle.seek(phoff)
        table = handle.read(entry_size * count)
    types = (struct.unpack_from("<I", table, i * entry_size)[0] for i in range(count))
    return PT_INTERP not in types


def _package_installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() == "install ok installed"


def is_installed() -> bool:
    """Whether Debian's busybox-static is installed and `/bin/busybox` is a static program."""
    return _package_installed() and BUSYBOX.is_file() and is_static_elf(BUSYBOX)


def install() -> None:
    """apt-get install busybox-static (needs root), refreshing the lists only if needed."""
    if is_installed():
        print(f"[testenv] busybox: {BUSYBOX} already installed", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    print(f"[testenv] busybox: {' '.join(command)}", flush=True)
    if common.run(command, env=env, check=False).returncode != 0:
        # Usually a fresh container without package lists.
        print("[testenv] busybox: apt-get update and retry", flush=True)
        common.run(["apt-get", "update"], env=env)
        common.run(command, env=env)


def applets() -> list[str]:
    """Every applet's install path, relative to the root (`bin/sh`, `usr/bin/tr`, ...)."""
    output = common.run([str(BUSYBOX), "--list-full"]).stdout
    return [line.strip().lstrip("/") for line in output.splitlines() if line.strip()]


def make_root(root: Path) -> Path:
    """Lay out `root` with only `/bin/busybox` and a symlink to it for each applet; return it.

    The links are relative to nothing outside the root (`/bin/busybox`), so they resolve inside
    a chroot. Nothing else is created: callers add what their test needs (`/tmp`, `/dev/null`).
    """
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in applets():
        link = root / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    return root
