"""The local executor of the embedded default: the supervisor as a child process per job.

There is no container runtime here, so the service's script runs natively on the host; the image
is recorded in the job log, not pulled. Each job gets a private folder with its configuration,
script, event, log and response; concurrency and run time are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from oscar.executors.base import Executor, JobResult
from oscar.models.job import Job
from oscar.models.service import Service
from oscar.models.storage import MinIOProvider

# Supervisor statuses (supervisor/__main__.py) → what the job record says.
_REASONS = {
    124: "the script exceeded the timeout",
    2: "bad configuration or event (see the log)",
    3: "the input could not be staged in (see the log)",
    4: "an output could not be staged out (see the log)",
}


def _private_file(path: Path, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class LocalExecutor(Executor):
    """Runs `python -m supervisor` as a child process for each job."""

    name = "local"

    def __init__(self, jobs_dir: Path, store: MinIOProvider, timeout: float) -> None:
        self.jobs_dir = jobs_dir
        self.jobs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = store
        self.timeout = timeout
        self._running: dict[str, asyncio.subprocess.Process] = {}

    def job_folder(self, job_name: str) -> Path:
        """The private folder of a job (refusing names that would leave the jobs folder)."""
        folder = (self.jobs_dir / job_name).resolve()
        if folder.parent != self.jobs_dir.resolve():
            raise ValueError(f"invalid job name {job_name!r}")
        return folder

    def prepare_job(self, folder: Path, service: Service, event: bytes) -> dict[str, str]:
        """Write the job's configuration, script and event; return the supervisor's env."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = service.model_dump(mode="json", by_alias=True, exclude={"token"})
        providers = config.setdefault("storage_providers", {}).setdefault("minio", {})
        providers["default"] = {
            "endpoint": self.store.endpoint,
            "region": self.store.region,
            "verify": self.store.verify,
        }
        _private_file(folder / "function_config.yaml", yaml.safe_dump(config))
        _private_file(folder / "script.sh", service.script)
        _private_file(folder / "event", event)
        (folder / "work").mkdir(exist_ok=True)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OSCAR_", "MINIO_", "AWS_"))
        }
        env.update(
            {
                "FUNCTION_CONFIG": str(folder / "function_config.yaml"),
                "SCRIPT": str(folder / "script.sh"),
                "MINIO_ACCESS_KEY": self.store.access_key,
                "MINIO_SECRET_KEY": self.store.secret_key,
                "PROVIDER_SECRETS_DIR": str(folder / "no-mounted-secrets"),
                "SUPERVISOR_TIMEOUT": str(self.timeout),
                "OSCAR_SERVICE_NAME": service.name,
                "OSCAR_SERVICE_TOKEN": service.token,
                "JOB_UUID": folder.name,
            }
        )
        return env

    async def _spawn(
        self, folder: Path, env: dict[str, str], stdout: Path, header: str
    ) -> tuple[int, str]:
        log_path = folder / "log"
        with log_path.open("ab") as log:
            log.write(header.encode())
            log.flush()
            with (folder / "event").open("rb") as stdin, stdout.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "supervisor",
                    "--workdir",
                    str(folder / "work"),
                    stdin=stdin,
                    stdout=out,
                    stderr=log,
                    env=env,
                    cwd=folder,
                    start_new_session=True,
                )
                self._running[folder.name] = process
                try:
                    # The supervisor enforces the script timeout itself; this is the backstop.
                    code = await asyncio.wait_for(process.wait(), self.timeout + 60)
                    reason = ""
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    code = await process.wait()
                    reason = "the job was killed after the timeout"
                finally:
                    self._running.pop(folder.name, None)
        return code, reason

    @staticmethod
    def _header(service: Service) -> str:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        return (
            f"{now} - oscar - INFO - embedded default: no container runtime, the script runs "
            f"natively on this host (image {service.image} recorded, not pulled)\n"
        )

    async def run(
        self, job: Job, service: Service, started: Callable[[], None] = lambda: None
    ) -> JobResult:
        """Run the supervisor for the job's event; the job folder keeps the log."""
        folder = self.job_folder(job.name)
        env = self.prepare_job(folder, service, job.event.encode())
        started()
        code, reason = await self._spawn(folder, env, folder / "response", self._header(service))
        shutil.rmtree(folder / "work", ignore_errors=True)
        if code < 0:
            return JobResult(128 - code, reason or f"the supervisor was killed by signal {-code}")
        if code != 0 and not reason:
            reason = _REASONS.get(code, f"the script exited with code {code}")
        return JobResult(code, reason)

    async def run_sync(
        self, service: Service, body: bytes, timeout: float
    ) -> tuple[int, bytes, str]:
        """Run the supervisor for a `/run` call; nothing is kept afterwards."""
        folder = self.job_folder(f"run-{service.name}-{uuid.uuid4()}")
        try:
            env = self.prepare_job(folder, service, body)
            env["SUPERVISOR_TIMEOUT"] = str(timeout)
            code, _ = await self._spawn(folder, env, folder / "response", self._header(service))
            return (
                code,
                (folder / "response").read_bytes(),
                (folder / "log").read_text(errors="replace"),
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def logs(self, job: Job) -> str:
        """The job's log file."""
        path = self.job_folder(job.name) / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def delete(self, job: Job) -> None:
        """Kill the job if running and remove its folder."""
        process = self._running.get(job.name)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.job_folder(job.name), ignore_errors=True)
