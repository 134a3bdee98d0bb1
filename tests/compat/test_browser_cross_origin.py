"""A browser app on another origin uses the API and the embedded S3 endpoint (Debian Chromium).

The page is served by a plain HTTP server on its own port, so every `fetch()` it makes to
`oscar serve` is cross-origin: Chromium sends the preflights and enforces the CORS answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.server import RunningServer
from tests.fixtures.services import minimal_service, unique_name
from tests.fixtures.site import static_site
from tests.services import browser as browser_service
from tests.services import common
from tests.services.browser import HeadlessChromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE = """<!doctype html>
<html><head><title>second origin</title></head><body><h1>a dashboard elsewhere</h1></body></html>
"""

# Runs in the page (its origin, not the API's): every call below is a cross-origin fetch().
FLOW = """
async (c) => {
  const out = {origin: location.origin};
  const basic = {Authorization: "Basic " + btoa(c.user + ":" + c.password)};
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  // Logging in: a wrong password is a readable 401, the right one opens /system/info.
  let r = await fetch(c.api + "/system/info", {
    headers: {Authorization: "Basic " + btoa(c.user + ":wrong")},
  });
  out.wrong = {status: r.status, detail: (await r.json()).detail};
  r = await fetch(c.api + "/system/info", {headers: basic});
  out.info = {status: r.status, name: (await r.json()).name};

  r = await fetch(c.api + "/system/services", {
    method: "POST",
    headers: {...basic, "Content-Type": "application/json"},
    body: JSON.stringify(c.service),
  });
  out.created = r.status;
  r = await fetch(c.api + "/system/services", {headers: basic});
  out.services = (await r.json()).map((s) => s.name);
  r = await fetch(c.api + "/system/services/" + c.service.name, {headers: basic});
  const token = (await r.json()).token;
  r = await fetch(c.api + "/system/services/no-such-service", {headers: basic});
  out.missing = r.status;

  // Upload to the service's input bucket on the embedded S3 endpoint, then read it back.
  r = await fetch(c.putUrl, {method: "PUT", body: c.content});
  out.put = {status: r.status, etag: r.headers.get("ETag"), body: await r.text()};
  r = await fetch(c.getUrl);
  out.got = {status: r.status, body: await r.text()};

  // Post a job with the service's token; its name comes back in an exposed header.
  r = await fetch(c.api + "/job/" + c.service.name, {
    method: "POST",
    headers: {Authorization: "Bearer " + token},
    body: "posted by the page",
  });
  out.job = {status: r.status, name: r.headers.get("X-Oscar-Job-Name")};

  // Both jobs (the upload's and the posted one) end: poll with a deadline, read their logs.
  const deadline = Date.now() + c.timeoutMs;
  let jobs = {};
  while (Date.now() < deadline) {
    r = await fetch(c.api + "/system/logs/" + c.service.name, {headers: basic});
    jobs = (await r.json()).jobs;
    const states = Object.values(jobs).map((j) => j.status);
    if (states.length >= 2 && states.every((s) => s === "Succeeded" || s === "Failed")) break;
    await sleep(200);
  }
  out.jobs = {};
  for (const [name, job] of Object.entries(jobs)) {
    r = await fetch(c.api + "/system/logs/" + c.service.name + "/" + name, {headers: basic});
    out.jobs[name] = {status: job.status, log: await r.text()};
  }

  // With credentials: "include" the browser needs Allow-Credentials and the echoed origin.
  try {
    r = await fetch(c.api + "/system/info", {headers: basic, credentials: "include"});
    out.credentialed = String(r.status);
  } catch (error) {
    out.credentialed = "blocked: " + error;
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    """Chromium for this module only: Playwright's sync API keeps an event loop running in
    this thread while it is up, and later tests call `asyncio.run`, so it must stop here
    rather than live for the session (as `tests.services.browser.browser` does)."""
    common.require_installed(browser_service.NAME, browser_service.is_installed())
    with browser_service.running(tmp_path_factory.mktemp("cross-origin-browser")) as launched:
        yield launched


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The origin of a second HTTP server (another port) serving PAGE at /index.html."""
    with static_site(tmp_path / "site", PAGE) as origin:
        yield origin


@pytest.mark.parametrize("mode", ["listed", "default"])
def test_page_on_another_origin_uses_api_and_s3(
    mode: str,
    browser: HeadlessChromium,
    site: str,
    start_oscar: Callable[..., RunningServer],
) -> None:
    env = {"OSCAR_CORS_ORIGINS": site} if mode == "listed" else {}
    oscar = start_oscar(extra_env=env)
    name = unique_name("web")
    script = 'echo "job read: $(cat "$INPUT_FILE_PATH")"\n'
    service = minimal_service(
        name, script=script, input=[{"storage_provider": "minio.default", "path": f"{name}/in"}]
    )
    s3 = oscar.s3(signature_version="s3v4")
    key = {"Bucket": name, "Key": "in/upload.txt"}
    config: dict[str, Any] = {
        "api": oscar.url,
        "user": oscar.username,
        "password": oscar.password,
        "service": service,
        "putUrl": s3.generate_presigned_url("put_object", Params=key),
        "getUrl": s3.generate_presigned_url("get_object", Params=key),
        "content": "uploaded by the page",
        "timeoutMs": 60_000,
    }
    context = browser.new_context()
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: console.append(message.text))
        assert page.goto(f"{site}/index.html").ok
        out = page.evaluate(FLOW, config)
    finally:
        context.close()

    assert out["origin"] == site != oscar.url
    assert out["wrong"]["status"] == 401
    assert out["wrong"]["detail"]
    assert out["info"] == {"status": 200, "name": "oscar"}
    assert out["created"] == 201
    assert name in out["services"]
    assert out["missing"] == 404
    assert out["put"]["status"] == 200, out["put"]
    assert out["put"]["etag"]
    assert out["got"] == {"status": 200, "body": "uploaded by the page"}
    assert out["job"]["status"] == 201
    posted = out["job"]["name"]
    assert posted and posted.startswith(name)
    jobs = out["jobs"]
    assert len(jobs) == 2, (jobs, console)
    assert all(job["status"] == "Succeeded" for job in jobs.values()), jobs
    assert "job read: posted by the page" in jobs[posted]["log"]
    (uploaded,) = [job for job_name, job in jobs.items() if job_name != posted]
    assert "job read: uploaded by the page" in uploaded["log"]
    if mode == "listed":
        assert out["credentialed"] == "200"
    else:
        # `*` never allows credentials: Chromium refuses to hand the answer to the page.
        assert out["credentialed"].startswith("blocked: TypeError"), out["credentialed"]
