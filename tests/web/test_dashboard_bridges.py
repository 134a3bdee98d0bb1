"""The dashboard's bridges pages in headless Chromium, against a real `oscar serve` and a real
WebDAV server (WsgiDAV).

A webdav bridge created through the form turns the files dropped in the WebDAV folder into jobs
while the list page, never reloaded, shows it running and counting; a second one, written in the
YAML tab with a wrong password, shows its error; an invalid field shows the API's message under
it; editing, disabling and enabling keep the stored credentials (the bridge still reads the
folder); deleting asks first. axe-core checks every bridges page, light and dark, desktop and
375 px wide, and their screenshots go to `test-output/dashboard/`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.dashboard import (
    VIEWPORTS,
    Dashboard,
    describe,
    expect,
    logged_in,
    open_dashboard,
)
from tests.fixtures.server import RunningServer, start_server
from tests.services import common
from tests.services.browser import HeadlessChromium
from tests.services.webdav import WebDavServer

pytestmark = [pytest.mark.browser, pytest.mark.web, pytest.mark.webdav]

MASKED = "********"
API_WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module; a failing bridge retries within 2 s, so its error shows."""
    data_dir = tmp_path_factory.mktemp("dashboard-bridges") / "data"
    running = start_server(data_dir, extra_env={"OSCAR_BRIDGE_RETRY_MAX": "2"})
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def dashboard(browser: HeadlessChromium, server: RunningServer, web: Path) -> Iterator[Dashboard]:
    """A fresh browser context (no session) on the dashboard, at desktop size."""
    with open_dashboard(browser, server) as opened:
        yield opened


@dataclass(frozen=True)
class DavService:
    """A service whose input is a folder of the WebDAV server."""

    name: str
    folder: Path  # the WebDAV folder on disk: files written here are what the bridges see
    api: httpx.Client

    def drop(self, *names: str) -> None:
        """Write files into the watched folder (whole, then renamed in, as an upload ends)."""
        for name in names:
            partial = self.folder.parent / f".{name}.part"
            partial.write_text(f"the file {name}\n")
            partial.rename(self.folder / name)

    def jobs(self) -> dict[str, dict[str, str]]:
        """The service's jobs, as the API lists them."""
        return self.api.get(f"/system/logs/{self.name}").json()["jobs"]

    def bridge(self, name: str) -> dict:
        """A bridge as the API answers it (200 asserted)."""
        answer = self.api.get(f"/system/bridges/{name}")
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def dav_service(server: RunningServer, webdav: WebDavServer) -> Iterator[DavService]:
    """A service with a `webdav.dav` input on its own WebDAV folder; its bridges and the service
    are deleted afterwards."""
    suffix = uuid.uuid4().hex[:6]
    name = f"dav-count-{suffix}"
    folder = webdav.root / f"inbox-{suffix}"
    folder.mkdir()
    api = server.client()
    body = {
        "name": name,
        "image": "docker.io/library/alpine:3.20",
        "script": '#!/bin/sh\nwc -c < "$INPUT_FILE_PATH"\n',
        "input": [{"storage_provider": "webdav.dav", "path": folder.name}],
        "storage_providers": {
            "webdav": {
                "dav": {
                    "hostname": webdav.url,
                    "login": webdav.username,
                    "password": webdav.password,
                }
            }
        },
    }
    answer = api.post("/system/services", json=body)
    assert answer.status_code == 201, answer.text
    try:
        yield DavService(name, folder, api)
    finally:
        for bridge in api.get("/system/bridges").json():
            if bridge["service"] == name:
                api.delete(f"/system/bridges/{bridge['name']}")
        api.delete(f"/system/services/{name}")


def wait_api(probe, what: str):
    """Poll the API until `probe` answers something truthy (a deadline, never a fixed sleep)."""
    return common.wait_until(probe, timeout=API_WAIT_SECONDS, interval=0.2, what=what)


def set_yaml(dashboard: Dashboard, text: str) -> None:
    """Replace the YAML editor's text as typing would (select all, then insert)."""
    page = dashboard.page
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


def main_nav(dashboard: Dashboard, label: str):
    return dashboard.page.get_by_role("navigation", name="Main").get_by_role("link", name=label)


def test_bridges_through_the_ui(
    dashboard: Dashboard, dav_service: DavService, webdav: WebDavServer
) -> None:
    dashboard.load_axe()
    page = logged_in(dashboard, "/bridges").page
    check = expect()
    api = dav_service.api

    # No bridge yet: the page says what bridges are.
    check(page.get_by_role("heading", name="No bridge yet")).to_be_visible()
    dashboard.screenshot("bridges-empty-light-desktop")
    assert not dashboard.axe_violations(), describe(dashboard.axe_violations())

    # A webdav bridge through the form, with its own credentials, polling every 0.5 s.
    page.get_by_role("link", name="Create bridge").first.click()
    check(page.get_by_role("heading", name="Create bridge", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("dav-feed")
    page.get_by_label("Type", exact=True).select_option("webdav")
    page.get_by_label("Service", exact=True).select_option(dav_service.name)
    page.get_by_label("Interval (seconds)").fill("0.5")
    page.get_by_label("User", exact=True).fill(webdav.username)
    page.get_by_label("Password", exact=True).fill(webdav.password)
    check(page.get_by_label("Password", exact=True)).to_have_attribute("type", "password")
    dashboard.screenshot("flow-bridge-form")
    page.get_by_role("button", name="Create bridge").click()
    check(page.get_by_role("heading", name="dav-feed", level=1, exact=True)).to_be_visible()
    stored = dav_service.bridge("dav-feed")
    assert stored["interval"] == 0.5
    assert stored["service"] == dav_service.name
    assert stored["credentials"] == {"password": MASKED, "user": MASKED}
    assert webdav.password not in page.content()

    # The list, never reloaded, shows the bridge running and counting the files dropped.
    main_nav(dashboard, "Bridges").click()
    row = page.locator('tr[data-bridge="dav-feed"]')
    check(row).to_have_attribute("data-state", "running")
    page.evaluate("() => { window.__notReloaded = true }")
    dav_service.drop("one.txt", "two.txt", "three.txt")
    check(row.locator('[data-cell="events"]')).to_have_text("3")
    check(row).to_have_attribute("data-state", "running")
    check(row.locator("time")).to_have_text(re.compile(r"ago|just now"))
    assert page.evaluate("() => window.__notReloaded === true")
    check(page.locator("main").get_by_role("status")).to_have_text("1 bridge: 1 running")

    # Its service's page lists the bridge and the jobs it started.
    row.get_by_role("link", name=dav_service.name).click()
    check(page.get_by_role("heading", name=dav_service.name, level=1)).to_be_visible()
    fed_by = page.locator('.fed-by li[data-bridge="dav-feed"]')
    check(fed_by).to_contain_text("running")
    check(page.locator('table[data-table="jobs"] tr[data-job]')).to_have_count(3)
    check(page.locator('table[data-table="jobs"] tr[data-status="Succeeded"]')).to_have_count(3)

    # A second bridge written in the YAML tab, with a wrong password: its error is shown.
    dashboard.go("/bridges/new")
    page.get_by_role("tab", name="YAML").click()
    set_yaml(
        dashboard,
        f"name: dav-wrong\ntype: webdav\nservice: {dav_service.name}\ninterval: 0.5\n"
        f"credentials:\n  user: {webdav.username}\n  password: not-the-password\n",
    )
    page.get_by_role("button", name="Create bridge").click()
    check(page.get_by_role("heading", name="dav-wrong", level=1, exact=True)).to_be_visible()
    check(page.locator('[data-cell="head-state"]')).to_have_text("error")
    check(page.locator('[data-cell="message"]')).to_contain_text("refused the bridge's credentials")
    dashboard.screenshot("flow-bridge-error")
    main_nav(dashboard, "Bridges").click()
    wrong = page.locator('tr[data-bridge="dav-wrong"]')
    check(wrong).to_have_attribute("data-state", "error")
    refused = "refused the bridge's credentials"
    check(wrong.locator('[data-cell="message"]')).to_contain_text(refused)
    check(row).to_have_attribute("data-state", "running")
    dashboard.screenshot("flow-bridges-list")

    # An invalid field: the API's message under it, and nothing created.
    dashboard.expected_errors.append(re.compile(r"status of 400"))
    page.get_by_role("link", name="Create bridge").click()
    page.get_by_label("Name", exact=True).fill("dav-invalid")
    page.get_by_label("Service", exact=True).select_option(dav_service.name)
    page.get_by_label("Interval (seconds)").fill("0")
    page.get_by_role("button", name="Create bridge").click()
    interval = page.locator('.field[data-field="interval"]')
    check(interval.locator(".field-error")).to_have_text("Input should be greater than 0")
    check(page.get_by_label("Interval (seconds)")).to_have_attribute("aria-invalid", "")
    check(page.get_by_label("Interval (seconds)")).to_be_focused()
    assert api.get("/system/bridges/dav-invalid").status_code == 404

    # Edit: a credential left empty is kept, so the bridge still reads the folder.
    dashboard.go("/bridges/dav-feed")
    page.get_by_role("link", name="Edit").click()
    check(page.get_by_role("heading", name="Edit bridge dav-feed")).to_be_visible()
    password = page.locator('.field[data-field="credentials.password"]')
    check(password).to_contain_text("Set. Leave empty to keep it")
    check(page.get_by_label("Password", exact=True)).to_have_value("")
    page.get_by_label("Stable polls").fill("1")
    page.get_by_role("button", name="Save changes").click()
    check(page.get_by_role("heading", name="dav-feed", level=1, exact=True)).to_be_visible()
    stored = dav_service.bridge("dav-feed")
    assert stored["stable_polls"] == 1
    assert stored["credentials"] == {"password": MASKED, "user": MASKED}
    # In the YAML tab the stored credentials read masked; saved so, they are kept too.
    page.get_by_role("link", name="Edit").click()
    page.get_by_role("tab", name="YAML").click()
    editor = page.locator(".cm-content")
    check(editor).to_contain_text(re.compile(r"password: ['\"]\*{8}['\"]"))
    check(editor).to_contain_text("stable_polls: 1")
    assert webdav.password not in page.content()
    page.get_by_role("button", name="Save changes").click()
    check(page.get_by_role("heading", name="dav-feed", level=1, exact=True)).to_be_visible()
    assert dav_service.bridge("dav-feed")["credentials"] == {"password": MASKED, "user": MASKED}
    dav_service.drop("four.txt")
    check(page.locator('[data-cell="head-state"]')).to_have_text("running")
    check(page.locator('[data-cell="events"]')).to_have_text(re.compile(r"^1 "))
    wait_api(lambda: len(dav_service.jobs()) == 4, "the fourth job, after the edit")

    # Disable, then enable: the credentials are kept and the bridge reads the folder again.
    page.get_by_role("button", name="Disable").click()
    check(page.locator('[data-cell="head-state"]')).to_have_text("disabled")
    stored = dav_service.bridge("dav-feed")
    assert stored["enabled"] is False
    assert stored["status"]["state"] == "disabled"
    assert stored["credentials"] == {"password": MASKED, "user": MASKED}
    page.get_by_role("button", name="Enable").click()
    check(page.locator('[data-cell="head-state"]')).to_have_text("running")
    assert dav_service.bridge("dav-feed")["enabled"] is True
    dav_service.drop("five.txt")
    wait_api(lambda: len(dav_service.jobs()) == 5, "the fifth job, after enabling again")

    # Delete asks first; the list no longer shows it.
    page.get_by_role("button", name="Delete bridge").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    check(page.get_by_role("heading", name="Bridges", level=1)).to_be_visible()
    check(page.locator('tr[data-bridge="dav-feed"]')).to_have_count(0)
    check(page.locator('tr[data-bridge="dav-wrong"]')).to_have_count(1)
    assert api.get("/system/bridges/dav-feed").status_code == 404
    dashboard.assert_no_console_errors()


@pytest.fixture
def shown_bridges(dav_service: DavService, webdav: WebDavServer) -> Iterator[DavService]:
    """A running bridge that recorded an event and a failing one, created through the API."""
    api = dav_service.api
    common_fields = {"type": "webdav", "service": dav_service.name, "interval": 0.5}
    answer = api.post("/system/bridges", json={"name": "shown-ok", **common_fields})
    assert answer.status_code == 201, answer.text
    wrong = {"user": webdav.username, "password": "not-the-password"}
    answer = api.post(
        "/system/bridges", json={"name": "shown-bad", **common_fields, "credentials": wrong}
    )
    assert answer.status_code == 201, answer.text
    dav_service.drop("seen.txt")
    wait_api(lambda: dav_service.bridge("shown-ok")["status"]["events"] == 1, "shown-ok's event")
    wait_api(lambda: dav_service.bridge("shown-bad")["status"]["state"] == "error", "the error")
    yield dav_service


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_bridges_pages_are_accessible_and_photographed(
    dashboard: Dashboard, shown_bridges: DavService, theme: str
) -> None:
    pages = {
        "bridges": ("/bridges", 'tr[data-bridge="shown-ok"][data-state="running"]'),
        "bridge-new": ("/bridges/new", '.field[data-field="stable_polls"]'),
        "bridge": ("/bridges/shown-ok", '[data-cell="head-state"] .badge-ok'),
        "bridge-error": ("/bridges/shown-bad", '[data-cell="head-state"] .badge-error'),
        "bridge-edit": ("/bridges/shown-bad/edit", '.field[data-field="credentials.password"]'),
        "service-bridges": (f"/services/{shown_bridges.name}", ".fed-by li"),
    }
    dashboard.load_axe()
    logged_in(dashboard)
    dashboard.set_theme(theme)
    failures = []
    for name, (route, loaded) in pages.items():
        for viewport in VIEWPORTS:
            violations = dashboard.audit(route, loaded, f"{name}-{theme}-{viewport}", viewport)
            if violations:
                failures.append(f"{name} ({theme}, {viewport}): {describe(violations)}")
    assert not failures, "\n".join(failures)
    dashboard.assert_no_console_errors()


def test_the_form_follows_the_type_and_the_yaml_tab_carries_it(
    dashboard: Dashboard, dav_service: DavService
) -> None:
    page = logged_in(dashboard, "/bridges/new").page
    check = expect()
    check(page.get_by_role("heading", name="Create bridge", level=1)).to_be_visible()

    # Each type shows its own fields and credentials; values typed for one are kept.
    page.get_by_label("Name", exact=True).fill("topic-feed")
    page.get_by_label("Folder", exact=True).fill("inbox/sub")
    page.get_by_label("Type", exact=True).select_option("kafka")
    check(page.get_by_label("Bootstrap servers (required)")).to_be_visible()
    check(page.get_by_label("SASL password")).to_have_attribute("type", "password")
    check(page.locator('.field[data-field="folder"]')).to_have_count(0)
    page.get_by_label("Bootstrap servers (required)").fill("127.0.0.1:9092")
    page.get_by_label("Topic (required)").fill("uploads")
    page.get_by_label("Payload").select_option("raw")
    page.get_by_label("SASL password").fill("typed-secret")

    # The YAML tab shows the same definition, the typed secret included (the person typed it).
    page.get_by_role("tab", name="YAML").click()
    editor = page.locator(".cm-content")
    for line in ("name: topic-feed", "type: kafka", "bootstrap_servers: 127.0.0.1:9092"):
        check(editor).to_contain_text(line)
    check(editor).to_contain_text("payload: raw")
    check(editor).to_contain_text("sasl_password: typed-secret")
    check(editor).not_to_contain_text("folder")

    # Back to the form, then to webdav: the folder typed first is still there.
    page.get_by_role("tab", name="Form").click()
    check(page.get_by_label("Topic (required)")).to_have_value("uploads")
    check(page.get_by_label("SASL password")).to_have_value("typed-secret")
    page.get_by_label("Type", exact=True).select_option("webdav")
    check(page.get_by_label("Folder", exact=True)).to_have_value("inbox/sub")
    dashboard.assert_no_console_errors()
