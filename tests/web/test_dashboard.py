"""The web dashboard driven in headless Debian Chromium against a real `oscar serve`.

The quick start through the UI (login, an FDL file, an upload, live job status, the log, the
output's bytes), field errors, a synchronous call, upload progress, deletion; axe-core on every
page; screenshots of every page, light and dark, desktop and 375 px wide (test output in
`test-output/dashboard/`); the first load's size.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.dashboard import (
    EXPECT_MS,
    VIEWPORTS,
    Dashboard,
    describe,
    expect,
    logged_in,
    open_dashboard,
)
from tests.fixtures.server import RunningServer, start_server
from tests.services.browser import HeadlessChromium

if TYPE_CHECKING:
    from playwright.sync_api import Request

pytestmark = [pytest.mark.browser, pytest.mark.web]

FIRST_LOAD_BUDGET_BYTES = 300 * 1024
# A job's script waits until the test drops a file named after its input into GATE_DIR, so the
# test decides when each job may finish and every state is on screen long enough to be seen.
GATED_SCRIPT = """#!/bin/sh
set -eu
name=$(basename "$INPUT_FILE_PATH")
echo "counting the words of $name"
while [ ! -e "$GATE_DIR/$name" ]; do sleep 0.1; done
wc -w < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/$name.count"
echo "done with $name"
"""
GATED_FDL = """functions:
  oscar:
  - local:
      name: word-count
      image: docker.io/library/alpine:3.20
      cpu: '0.5'
      memory: 128Mi
      script: word-count.sh
      environment:
        variables:
          GATE_DIR: {gate_dir}
      input:
      - storage_provider: minio.default
        path: word-count/in
      output:
      - storage_provider: minio.default
        path: word-count/out
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module; one job at a time, so a second upload waits as Pending."""
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    running = start_server(data_dir, extra_env={"OSCAR_MAX_CONCURRENT_JOBS": "1"})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def dashboard(browser: HeadlessChromium, server: RunningServer, web: Path) -> Iterator[Dashboard]:
    """A fresh browser context (no session) on the dashboard, at desktop size (axe-core is
    `web`'s)."""
    with open_dashboard(browser, server) as opened:
        yield opened


def upload_in_ui(dashboard: Dashboard, bucket: str, prefix: str, *files: Path) -> None:
    """Upload `files` under `bucket/prefix` from the buckets page and wait until each is done."""
    dashboard.go(f"/buckets/{bucket}?prefix={prefix}")
    page = dashboard.page
    page.get_by_label("Choose files").set_input_files([str(path) for path in files])
    for path in files:
        row = page.locator(f'.progress-row[data-name="{path.name}"]')
        expect()(row).to_contain_text("Uploaded")


def job_row(dashboard: Dashboard, status: str):
    return dashboard.page.locator(f'table[data-table="jobs"] tr[data-status="{status}"]')


def test_quick_start_through_the_ui(
    dashboard: Dashboard, server: RunningServer, tmp_path: Path
) -> None:
    page = dashboard.page
    check = expect()
    gate_dir = tmp_path / "gates"
    gate_dir.mkdir()
    fdl = tmp_path / "word-count.yaml"
    fdl.write_text(GATED_FDL.format(gate_dir=gate_dir))
    script = tmp_path / "word-count.sh"
    script.write_text(GATED_SCRIPT)

    # A wrong password is refused with a sentence, and the browser logs its own 401 line.
    dashboard.open()
    check(page.get_by_role("heading", name="Log in to oscar")).to_be_visible()
    dashboard.expected_errors.append(re.compile(r"status of 401"))
    dashboard.login(password="not-the-password")
    check(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    dashboard.login()
    check(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    dashboard.expected_errors.clear()

    # Create the service from its FDL file and script.
    page.get_by_role("link", name="Create service").click()
    page.get_by_label("Import an FDL file").set_input_files([str(fdl), str(script)])
    check(page.get_by_role("tab", name="YAML")).to_have_attribute("aria-selected", "true")
    page.get_by_role("button", name="Create service").click()
    check(page.get_by_role("heading", name="word-count", level=1)).to_be_visible()
    stored = server.client().get("/system/services/word-count").json()
    assert stored["script"] == GATED_SCRIPT
    assert stored["environment"]["variables"]["GATE_DIR"] == str(gate_dir)

    # Two uploads: the first runs (held at its gate), the second waits for the only slot.
    first = tmp_path / "first.txt"
    first.write_text("one two three four\n")
    second = tmp_path / "second.txt"
    second.write_text("three little words\n")
    upload_in_ui(dashboard, "word-count", "in/", first)
    upload_in_ui(dashboard, "word-count", "in/", second)
    page.get_by_role("link", name="Services").click()
    page.get_by_role("link", name="word-count").click()
    check(job_row(dashboard, "Running")).to_have_count(1)
    check(job_row(dashboard, "Pending")).to_have_count(1)
    pending_job = job_row(dashboard, "Pending").get_attribute("data-job")
    page.evaluate("() => { window.__notReloaded = true }")

    # Open the waiting job's log and follow it while it goes Pending → Running → Succeeded.
    waiting = page.locator(f'tr[data-job="{pending_job}"]')
    check(waiting.locator(".badge")).to_have_text("Pending")
    waiting.get_by_role("button", name=f"Log of {pending_job}").click()
    (gate_dir / "first.txt").touch()
    check(waiting.locator(".badge")).to_have_text("Running")
    log = page.locator("pre[data-log]")
    check(log).to_contain_text("counting the words of second.txt")
    dashboard.screenshot("flow-job-running-log")
    (gate_dir / "second.txt").touch()
    check(waiting.locator(".badge")).to_have_text("Succeeded")
    check(log).to_contain_text("done with second.txt")
    check(job_row(dashboard, "Succeeded")).to_have_count(2)
    assert page.evaluate("() => window.__notReloaded === true")

    # Download the output from the buckets page: the store's bytes, and the right count.
    dashboard.go("/buckets/word-count?prefix=out/")
    row = page.locator('tr[data-key="out/second.txt.count"]')
    with page.expect_download() as download_info:
        row.get_by_role("button", name=re.compile("Download")).click()
    downloaded = Path(download_info.value.path()).read_bytes()
    s3 = server.s3()
    stored_output = s3.get_object(Bucket="word-count", Key="out/second.txt.count")["Body"].read()
    assert downloaded == stored_output == b"3\n"

    # Deleting the service removes it from the list.
    page.get_by_role("link", name="Services").click()
    page.get_by_role("link", name="word-count").click()
    page.get_by_role("button", name="Delete service").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    check(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    check(page.locator('tr[data-service="word-count"]')).to_have_count(0)
    assert server.client().get("/system/services/word-count").status_code == 404
    dashboard.assert_no_console_errors()


def test_invalid_fdl_shows_the_field_error(dashboard: Dashboard) -> None:
    page = logged_in(dashboard, "/services/new").page
    check = expect()
    check(page.get_by_role("heading", name="Create service")).to_be_visible()
    dashboard.expected_errors.append(re.compile(r"status of 400"))

    # The form: the error sits under the Memory field.
    page.get_by_label("Name", exact=True).fill("bad-memory")
    page.get_by_label("Image", exact=True).fill("alpine")
    page.get_by_label("Memory").fill("lots")
    page.get_by_role("button", name="Create service").click()
    memory_field = page.locator('.field[data-field="memory"]')
    check(memory_field.locator(".field-error")).to_contain_text("lots")
    check(page.get_by_label("Memory")).to_have_attribute("aria-invalid", "")

    # The YAML editor: the same error on the line of `memory`, and listed under the editor.
    page.get_by_role("tab", name="YAML").click()
    page.get_by_role("button", name="Create service").click()
    problem = page.locator("#yaml-problem")
    check(problem).to_contain_text(re.compile(r"line \d+: memory: .*lots"))
    line = int(re.search(r"line (\d+): memory", problem.inner_text()).group(1))
    editor_lines = page.locator(".cm-content .cm-line")
    check(editor_lines.nth(line - 1)).to_contain_text("memory:")
    check(page.locator(".cm-lint-marker-error")).not_to_have_count(0)
    dashboard.screenshot("flow-invalid-fdl-yaml")
    assert dashboard.server.client().get("/system/services/bad-memory").status_code == 404
    dashboard.assert_no_console_errors()


def test_edit_by_form_keeps_the_token_and_filters_find_the_service(
    dashboard: Dashboard, server: RunningServer
) -> None:
    api = server.client()
    body = {
        "name": "editable",
        "image": "docker.io/library/alpine:3.20",
        "script": "#!/bin/sh\necho hi\n",
        "memory": "128Mi",
        "environment": {"variables": {"KEEP": "me"}, "secrets": {"API_KEY": "s3cr3t"}},
    }
    assert api.post("/system/services", json=body).status_code == 201
    token = api.get("/system/services/editable").json()["token"]
    try:
        page = logged_in(dashboard).page
        check = expect()
        # The filters: a name that matches nothing empties the list; the backend filter keeps it.
        page.get_by_label("Search").fill("no-such-service")
        check(page.locator('tr[data-service="editable"]')).to_have_count(0)
        check(page.get_by_text("No service matches these filters.")).to_be_visible()
        page.get_by_label("Search").fill("edit")
        page.get_by_label("Backend").select_option("cloud")
        check(page.locator('tr[data-service="editable"]')).to_have_count(1)
        page.get_by_label("Backend").select_option("hpc")
        check(page.locator('tr[data-service="editable"]')).to_have_count(0)
        page.get_by_label("Backend").select_option("")

        # The token is hidden until asked for.
        page.get_by_role("link", name="editable").click()
        assert token not in page.content()
        page.get_by_role("button", name="Show token").click()
        check(page.get_by_label("Service token")).to_have_value(token)
        page.get_by_role("button", name="Hide token").click()
        assert token not in page.content()

        # Edit by form: memory changes; the token, the variables and the secret are kept.
        page.get_by_role("link", name="Edit").click()
        page.get_by_label("Memory").fill("512Mi")
        page.get_by_role("button", name="Save changes").click()
        check(page.get_by_role("heading", name="editable", level=1)).to_be_visible()
        stored = api.get("/system/services/editable").json()
        assert stored["memory"] == "512Mi"
        assert stored["token"] == token
        assert stored["environment"]["variables"] == {"KEEP": "me"}
        assert list(stored["environment"]["secrets"]) == ["API_KEY"]
        dashboard.assert_no_console_errors()
    finally:
        api.delete("/system/services/editable")


def test_synchronous_invoke_returns_the_result(dashboard: Dashboard, server: RunningServer) -> None:
    repo = Path(__file__).resolve().parents[2]
    fdl = (repo / "fdl-examples" / "cowsay" / "cowsay.yaml").read_text()
    api = server.client()
    script = (repo / "fdl-examples" / "cowsay" / "cowsay.sh").read_text()
    body = {"name": "cowsay", "image": "alpine", "script": script, "log_level": "CRITICAL"}
    assert "cowsay" in fdl
    assert api.post("/system/services", json=body).status_code == 201
    try:
        page = logged_in(dashboard, "/services/cowsay").page
        check = expect()
        page.get_by_label("Input text").fill("Moo from the dashboard")
        page.get_by_role("button", name="Invoke").click()
        check(page.locator("pre[data-result]")).to_contain_text("< Moo from the dashboard >")
        check(page.locator("pre[data-result]")).to_contain_text("(oo)")
        dashboard.screenshot("flow-invoke-result")
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download result").click()
        result = Path(download_info.value.path()).read_text()
        assert "< Moo from the dashboard >" in result
        dashboard.assert_no_console_errors()
    finally:
        api.delete("/system/services/cowsay")


def test_a_10_mb_upload_shows_its_progress(
    dashboard: Dashboard, server: RunningServer, tmp_path: Path
) -> None:
    api = server.client()
    assert api.post("/system/buckets", json={"bucket_name": "uploads"}).status_code == 201
    big = tmp_path / "big.bin"
    big.write_bytes(hashlib.sha256(b"seed").digest() * (10 * 1024 * 1024 // 32))
    page = logged_in(dashboard, "/buckets/uploads").page
    # Chromium's network emulation slows the upload (~2 MB/s) so its progress can be watched.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 2_000_000},
    )
    page.get_by_label("Choose files").set_input_files(str(big))
    progress = page.locator('.progress-row[data-name="big.bin"] progress')
    page.wait_for_function(
        "el => el.value > 0 && el.value < el.max", arg=progress.element_handle(), timeout=EXPECT_MS
    )
    dashboard.screenshot("flow-upload-progress")
    expect()(page.locator('.progress-row[data-name="big.bin"]')).to_contain_text("Uploaded")
    expect()(page.locator('tr[data-key="big.bin"]')).to_have_count(1)
    s3 = server.s3()
    stored = s3.get_object(Bucket="uploads", Key="big.bin")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(big.read_bytes()).digest()

    # Deleting it from the page removes it from the store (a presigned DELETE).
    page.get_by_role("button", name="Delete big.bin").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect()(page.locator('tr[data-key="big.bin"]')).to_have_count(0)
    assert s3.list_objects_v2(Bucket="uploads").get("KeyCount") == 0
    dashboard.assert_no_console_errors()


def test_first_load_of_the_services_page_is_small(dashboard: Dashboard) -> None:
    """A cold load (fresh context, empty cache) of #/services, already logged in."""
    page = dashboard.page
    server = dashboard.server
    session = {"endpoint": server.url, "username": server.username, "password": server.password}
    page.add_init_script(
        f"sessionStorage.setItem('oscar.session', {json.dumps(json.dumps(session))})"
    )
    transferred: list[tuple[str, int]] = []

    def on_finished(request: Request) -> None:
        sizes = request.sizes()
        transferred.append((request.url, sizes["responseBodySize"] + sizes["responseHeadersSize"]))

    page.on("requestfinished", on_finished)
    dashboard.open("/services")
    expect()(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    page.wait_for_load_state("networkidle")
    total = sum(size for _, size in transferred)
    listing = "\n".join(f"{size:>8} {url}" for url, size in transferred)
    print(f"first load of the services page: {total} bytes\n{listing}")
    assert any(url.endswith("/ui/assets/main.js") for url, _ in transferred)
    assert all(size > 0 for _, size in transferred), listing  # nothing came from a cache
    assert total <= FIRST_LOAD_BUDGET_BYTES, listing


# Each page, and what is on screen once it has loaded its data.
PAGES = {
    "login": ("/login", "form"),
    "services": ("/services", 'tr[data-service="shots"]'),
    "service-new": ("/services/new", '.field[data-field="name"]'),
    "service": ("/services/shots", 'tr[data-status="Succeeded"]'),
    "service-edit": ("/services/shots/edit", '.field[data-field="input[0].path"]'),
    "buckets": ("/buckets", 'tr[data-bucket="shots"]'),
    "bucket": ("/buckets/shots?prefix=in/", 'tr[data-key="in/hello.txt"]'),
    "system": ("/system", 'figure[data-chart="durations"] .uplot'),
}


@pytest.fixture
def shots_service(server: RunningServer) -> Iterator[None]:
    """A service with a finished job and a file in its bucket, so the pages have content."""
    api = server.client()
    body = {
        "name": "shots",
        "image": "docker.io/library/alpine:3.20",
        "script": '#!/bin/sh\nwc -c < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/size"\n',
        "input": [{"storage_provider": "minio.default", "path": "shots/in"}],
        "output": [{"storage_provider": "minio.default", "path": "shots/out"}],
    }
    assert api.post("/system/services", json=body).status_code == 201
    server.s3().put_object(Bucket="shots", Key="in/hello.txt", Body=b"hello dashboard\n")
    from tests.services import common

    def succeeded() -> list[dict[str, str]]:
        jobs = api.get("/system/logs/shots").json()["jobs"].values()
        return [job for job in jobs if job["status"] == "Succeeded"]

    common.wait_until(
        succeeded,
        timeout=30,
        interval=0.2,
        what="the shots job to succeed",
    )
    try:
        yield
    finally:
        api.delete("/system/services/shots")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_is_accessible_and_photographed(
    dashboard: Dashboard, shots_service: None, theme: str
) -> None:
    dashboard.load_axe()
    page = logged_in(dashboard).page
    dashboard.set_theme(theme)
    failures = []
    for name, (route, loaded) in PAGES.items():
        for viewport in VIEWPORTS:
            if name == "login":
                dashboard.page.evaluate("() => sessionStorage.clear()")
            violations = dashboard.audit(route, loaded, f"{name}-{theme}-{viewport}", viewport)
            if violations:
                failures.append(f"{name} ({theme}, {viewport}): {describe(violations)}")
            if name == "login":
                dashboard.login()
                expect()(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    assert not failures, "\n".join(failures)
    dashboard.assert_no_console_errors()
