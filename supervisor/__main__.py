"""`oscar-supervisor`: read one event (stdin or $EVENT), process it, print the response.

Exit status: 0 success; the script's own code when it fails; 124 on timeout; 2 bad
configuration or event; 3 stage-in failure; 4 stage-out failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from supervisor import __version__
from supervisor.config import (
    PROVIDER_SECRETS_DIR,
    FunctionConfig,
    ProviderSecrets,
    env_flag,
    load_config,
    load_provider_secrets,
)
from supervisor.errors import EventError, SupervisorError
from supervisor.events import decode_event_payload
from supervisor.logs import configure
from supervisor.pipeline import run_job
from supervisor.runner import become_subreaper

log = logging.getLogger("supervisor")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oscar-supervisor", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--base64",
        action="store_true",
        help="the event is base64-encoded (also EVENT_BASE64=1; the HPC path encodes it)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="kill the script after this many seconds (also SUPERVISOR_TIMEOUT)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to create the job's temporary folders"
    )
    return parser


def _read_payload(env: dict[str, str]) -> bytes:
    # Upstream pipes the event on stdin (`echo $EVENT | supervisor`); $EVENT is the fallback
    # for runners that cannot pipe.
    if not sys.stdin.isatty():
        data = sys.stdin.buffer.read()
        if data.strip():
            return data
    if env.get("EVENT"):
        return env["EVENT"].encode()
    raise EventError("no event: pipe it on stdin or set EVENT")


def _remove_config_file(env: dict[str, str]) -> None:
    """Delete the `FUNCTION_CONFIG` file once read: it holds the other providers' credentials,
    and the script, running as the same user, must not read them there."""
    path = Path(env.get("FUNCTION_CONFIG", ""))
    if env.get("FUNCTION_CONFIG") and path.is_file():
        path.unlink()


def _load_config_and_secrets(env: dict[str, str]) -> tuple[FunctionConfig, ProviderSecrets]:
    """The configuration and the provider secrets, read first thing. With
    `SUPERVISOR_CONSUME_SECRETS` their files are gone afterwards, whatever fails next."""
    consume = env_flag(env, "SUPERVISOR_CONSUME_SECRETS")
    secrets_dir = Path(env.get("PROVIDER_SECRETS_DIR", str(PROVIDER_SECRETS_DIR)))
    try:
        secrets = load_provider_secrets(secrets_dir, consume=consume)
        return load_config(env), secrets
    finally:
        if consume:
            _remove_config_file(env)


def main(argv: list[str] | None = None) -> int:
    """Run one job; return the exit status."""
    args = _parser().parse_args(argv)
    if args.version:
        print(f"oscar-supervisor {__version__}")
        return 0
    env = dict(os.environ)
    become_subreaper()  # detached processes of the script re-parent here and are reaped
    configure(env.get("LOG_LEVEL", "INFO").upper() if env.get("LOG_LEVEL") else "INFO")
    try:
        config, secrets = _load_config_and_secrets(env)
        configure(config.log_level)
        timeout = args.timeout or (
            float(env["SUPERVISOR_TIMEOUT"]) if env.get("SUPERVISOR_TIMEOUT") else None
        )
        payload = decode_event_payload(
            _read_payload(env), base64_encoded=args.base64 or env_flag(env, "EVENT_BASE64")
        )
        result = run_job(
            payload, config, env, secrets=secrets, workdir=args.workdir, timeout=timeout
        )
    except SupervisorError as exc:
        log.error("%s", exc.message)
        return exc.exit_code
    except ValueError as exc:
        log.error("invalid setting: %s", exc)
        return 2
    except Exception:
        # A bug of ours: say so with the traceback, and fail the job rather than hang or lie.
        log.exception("unexpected supervisor error")
        return 1
    sys.stdout.buffer.write(result)
    sys.stdout.buffer.flush()
    log.info("Job finished")
    return 0


def main_exit() -> None:
    """Console-script and zipapp entry point: exit with `main()`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
