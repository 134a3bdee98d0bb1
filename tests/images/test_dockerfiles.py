"""The Dockerfiles of `images/*/`: a small rules checker reading their instructions (no image is
built and no Docker daemon is needed).

hadolint, the usual Dockerfile linter, is not used: it is a Haskell binary distributed through
GitHub releases and container images, and neither can be installed here (no binary registry,
no Docker daemon; it is not in Debian's or PyPI's archives). These rules cover what this
project asks of its images instead: multi-stage builds, pinned base images, a numeric non-root
user in the final stage, no remote `ADD`, lean `apt-get` layers, no `sudo`, and no build
argument or environment variable named like a secret.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("images/*/Dockerfile"))
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY", re.IGNORECASE)
URL = re.compile(r"^(https?|ftp)://|^git@", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments, its first line."""

    keyword: str
    args: str
    line: int


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: continuation lines joined (`\\`, or the escape
    character a `# escape=` directive names), comment lines inside them skipped, as Docker
    reads them. Heredocs are not supported (none of our Dockerfiles uses one)."""
    escape = "\\"
    lines = text.splitlines()
    for line in lines:  # parser directives come first, before any other line
        directive = re.match(r"#\s*escape\s*=\s*(\S)\s*$", line.strip())
        if directive:
            escape = directive.group(1)
            continue
        if not re.match(r"#\s*\w+\s*=", line.strip()):
            break
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and (not stripped or stripped.startswith("#")):
            continue  # blank and comment lines inside a continued instruction are dropped
        if not buffer:
            start = number
        if stripped.endswith(escape):
            buffer.append(stripped[: -len(escape)])
            continue
        buffer.append(stripped)
        keyword, _, args = " ".join(buffer).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = []
    if buffer:
        keyword, _, args = " ".join(buffer).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each build stage, its FROM first (global ARGs are left out)."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([instruction])
        elif found:
            found[-1].append(instruction)
    return found


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)",
        lambda m: args.get(m.group(1) or m.group(2), m.group(0)),
        value,
    )


def _pairs(args: str) -> dict[str, str]:
    """`ENV`/`ARG`/`LABEL` arguments: `A=1 B="2 3"`, or the legacy `ENV A 1 2`, or `ARG A`."""
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.partition("=")[::2] for word in words)


def check(text: str) -> list[str]:
    """Every rule this Dockerfile breaks, one sentence each (empty: none)."""
    instructions = parse(text)
    problems: list[str] = []
    all_stages = stages(instructions)
    if len(all_stages) < 2:
        problems.append(f"not multi-stage: {len(all_stages)} FROM")
    global_args = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            global_args.update(_pairs(instruction.args))
    earlier: set[str] = set()  # names of the stages before: `FROM builder` is pinned by them
    for stage in all_stages:
        words = [w for w in stage[0].args.split() if not w.startswith("--")]
        image = _substitute(words[0], global_args) if words else ""
        if image != "scratch" and image.lower() not in earlier:
            problem = _unpinned(image)
            if problem:
                problems.append(f"line {stage[0].line}: FROM {image}: {problem}")
        if len(words) >= 3 and words[1].upper() == "AS":
            earlier.add(words[2].lower())
    if all_stages:
        users = [i for i in all_stages[-1] if i.keyword == "USER"]
        if not users:
            problems.append("the final stage sets no USER (it would run as root)")
        else:
            user, _, group = users[-1].args.partition(":")
            if not user.isdigit() or int(user) == 0 or (group and not group.isdigit()):
                problems.append(
                    f"line {users[-1].line}: USER {users[-1].args}: the final user must be "
                    "numeric and not 0 (runAsNonRoot can only check a numeric user)"
                )
    for instruction in instructions:
        where = f"line {instruction.line}: {instruction.keyword}"
        if instruction.keyword == "ADD":
            sources = [w for w in instruction.args.split() if not w.startswith("--")][:-1]
            if any(URL.match(s) for s in sources):
                problems.append(f"{where}: ADD of a URL (download it in a RUN and verify it)")
        if instruction.keyword == "RUN":
            command = instruction.args
            if re.search(r"\bsudo\b", command):
                problems.append(f"{where}: sudo")
            if re.search(r"\bapt-get\b[^;&|]*\binstall\b", command):
                if "--no-install-recommends" not in command:
                    problems.append(f"{where}: apt-get install without --no-install-recommends")
                if not re.search(r"rm\s+-(rf|fr)\s+/var/lib/apt/lists", command):
                    problems.append(f"{where}: apt-get install leaves /var/lib/apt/lists behind")
        if instruction.keyword in ("ENV", "ARG"):
            for name in _pairs(instruction.args):
                if SECRET_NAME.search(name):
                    problems.append(
                        f"{where} {name}: named like a secret (pass secrets at run time)"
                    )
    return problems


def _unpinned(image: str) -> str:
    """Why `image` is not pinned ('' when it is): a digest, or an exact version tag."""
    if "@sha256:" in image:
        return ""
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "no tag (means latest)"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return "the latest tag"
    if "$" in tag:
        return "a tag from a build argument without a default"
    if not re.search(r"\d", tag):
        return f"tag {tag!r} names no version"
    return ""


# --- the project's Dockerfiles ---------------------------------------------------------------


def test_the_control_plane_image_is_among_them() -> None:
    assert ROOT / "images" / "oscar" / "Dockerfile" in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_follows_the_rules(dockerfile: Path) -> None:
    assert check(dockerfile.read_text()) == []


def test_control_plane_image_runs_oscar_serve_with_the_kubernetes_extra() -> None:
    instructions = parse((ROOT / "images" / "oscar" / "Dockerfile").read_text())
    builder, final = stages(instructions)[0], stages(instructions)[-1]
    assert any(
        i.keyword == "RUN" and "pip install" in i.args and "'.[kubernetes]'" in i.args
        for i in builder
    )
    assert any(i.keyword == "COPY" and i.args.startswith("--from=builder") for i in final)
    entrypoint = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ['["oscar", "serve"]']
    labels: dict[str, str] = {}
    for i in final:
        if i.keyword == "LABEL":
            labels.update(_pairs(i.args))
    assert {"org.opencontainers.image.title", "org.opencontainers.image.version"} <= set(labels)
    assert {"org.opencontainers.image.licenses", "org.opencontainers.image.source"} & set(labels)


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "test-output", "web/node_modules", "tests"} <= set(ignored)


# --- the checker itself: each rule fires ---------------------------------------------------------

GOOD = """\
# escape=\\
FROM python:3.11.14-slim-bookworm AS build
RUN apt-get update \\
    # a comment inside the command
    && apt-get install -y --no-install-recommends gcc \\
    && rm -rf /var/lib/apt/lists/*
FROM debian:12.8-slim@sha256:0123
COPY --from=build /x /x
USER 10001:10001
"""


def test_checker_accepts_a_good_dockerfile() -> None:
    assert check(GOOD) == []
    (run,) = [i for i in parse(GOOD) if i.keyword == "RUN"]
    assert run.line == 3 and "comment" not in run.args and "rm -rf /var/lib/apt/lists" in run.args


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("FROM debian:12.8-slim@sha256:0123", "FROM debian"), "no tag"),
        (("FROM debian:12.8-slim@sha256:0123", "FROM debian:latest"), "the latest tag"),
        (("FROM debian:12.8-slim@sha256:0123", "FROM debian:bookworm-slim"), "names no version"),
        (("USER 10001:10001", "USER oscar"), "must be numeric"),
        (("USER 10001:10001", "USER 0"), "must be numeric and not 0"),
        (("USER 10001:10001\n", ""), "sets no USER"),
        (("--no-install-recommends ", ""), "without --no-install-recommends"),
        (("\\\n    && rm -rf /var/lib/apt/lists/*", ""), "leaves /var/lib/apt/lists"),
        (("COPY --from=build /x /x", "ADD https://example.org/x.tgz /x"), "ADD of a URL"),
        (("COPY --from=build /x /x", "RUN sudo make install"), "sudo"),
        (("COPY --from=build /x /x", "ENV DB_PASSWORD=hunter2"), "named like a secret"),
        (("COPY --from=build /x /x", "ARG API_TOKEN"), "named like a secret"),
        (("COPY --from=build /x /x", "ENV AWS_SECRET_ACCESS_KEY x"), "named like a secret"),
    ],
)
def test_checker_reports_each_broken_rule(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    problems = check(GOOD.replace(old, new))
    assert any(expected in p for p in problems), problems


def test_checker_wants_two_stages_and_resolves_build_arguments() -> None:
    single = "FROM python:3.11.14-slim-bookworm\nUSER 10001\n"
    assert check(single) == ["not multi-stage: 1 FROM"]
    with_arg = "ARG BASE=python:3.11.14-slim-bookworm\nFROM ${BASE} AS a\nFROM a\nUSER 1\n"
    assert check(with_arg) == []
    unpinned_arg = "ARG BASE=python\nFROM $BASE AS a\nFROM a\nUSER 1\n"
    assert any("no tag" in p for p in check(unpinned_arg))
