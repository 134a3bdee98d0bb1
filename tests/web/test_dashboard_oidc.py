"""The dashboard's OIDC login (authorization code + PKCE) in headless Chromium, against a real
Keycloak (realm `oscar`, public client `oscar-dashboard`) and a real `oscar serve` that trusts it.

`owner` logs in through Keycloak's own form and lands on the services page with their name in
the header; a service created through the form is listed as theirs (owner = their `sub`); the
access token is renewed before it expires and after a 401; logging out of oscar and then of
Keycloak lets `stranger` log in, who does not see `owner`'s service. A tampered callback (wrong
`state`, with a real code), `error=access_denied` and an unreachable provider each show a
sentence on the login page. Screenshots go to `test-output/dashboard/oidc-*.png`.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.fixtures.dashboard import Dashboard, describe, expect, open_dashboard
from tests.fixtures.server import RunningServer, start_server
from tests.services.browser import HeadlessChromium

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Request, Route

pytestmark = [pytest.mark.browser, pytest.mark.keycloak, pytest.mark.web]

CLIENT_ID = "oscar-dashboard"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, oidc_realm: Any) -> Iterator[RunningServer]:
    """One server for the module, trusting the realm; its dashboard is the client's redirect."""
    data_dir = tmp_path_factory.mktemp("dashboard-oidc") / "data"
    running = start_server(
        data_dir,
        extra_env={
            "OSCAR_OIDC_ISSUERS": oidc_realm.issuer,
            "OSCAR_OIDC_AUDIENCE": "oscar",
            "OSCAR_OIDC_GROUPS": "vo.oscar.test",
            "OSCAR_OIDC_CLIENT_ID": CLIENT_ID,
            # Users may define services whose jobs run as local processes (the default backend).
            "OSCAR_LOCAL_USER_SERVICES": "true",
        },
    )
    try:
        oidc_realm.set_client_redirects(CLIENT_ID, [f"{running.url}/ui"], [running.url])
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def provider(oidc_realm: Any) -> dict[str, Any]:
    """The realm's discovery document."""
    return httpx.get(f"{oidc_realm.issuer}/.well-known/openid-configuration", timeout=10).json()


@pytest.fixture
def dashboard(browser: HeadlessChromium, server: RunningServer, web: Path) -> Iterator[Dashboard]:
    """A fresh browser context (no session, no Keycloak cookie) on the dashboard."""
    with open_dashboard(browser, server) as opened:
        yield opened


def oidc_button(dashboard: Dashboard) -> Locator:
    return dashboard.page.get_by_role("button", name="Log in with OIDC")


def keycloak_login(dashboard: Dashboard, oidc_realm: Any, user: str, shot: str = "") -> None:
    """On Keycloak's login page (reached from the dashboard), log in as `user`."""
    page = dashboard.page
    expect()(page.locator("#username")).to_be_visible()
    assert page.url.startswith(oidc_realm.issuer), page.url
    page.locator("#username").fill(user)
    page.locator("#password").fill(oidc_realm.users[user].password)
    if shot:
        dashboard.screenshot(shot)
    page.locator("#kc-login").click()


def log_in_with_oidc(dashboard: Dashboard, oidc_realm: Any, user: str, shot: str = "") -> None:
    """From the dashboard's login page through Keycloak and back to the services page."""
    oidc_button(dashboard).click()
    keycloak_login(dashboard, oidc_realm, user, shot)
    expect()(dashboard.page.get_by_role("heading", name="Services", level=1)).to_be_visible()


def stored_session(dashboard: Dashboard) -> dict[str, Any] | None:
    raw = dashboard.page.evaluate("() => sessionStorage.getItem('oscar.session')")
    return json.loads(raw) if raw else None


def change_tokens(dashboard: Dashboard, **values: str) -> None:
    """Set fields of the stored OIDC session to JavaScript expressions (`expires_at="0"`)."""
    assignments = "".join(f"s.oidc.{key} = {value};" for key, value in values.items())
    dashboard.page.evaluate(
        "() => { const s = JSON.parse(sessionStorage.getItem('oscar.session'));"
        f" {assignments} sessionStorage.setItem('oscar.session', JSON.stringify(s)) }}"
    )


def claims(jwt: str) -> dict[str, Any]:
    """A JWT's claims, unchecked (Keycloak minted it; the test only reads it)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_owner_logs_in_creates_a_service_and_a_stranger_cannot_see_it(
    dashboard: Dashboard, server: RunningServer, oidc_realm: Any, provider: dict[str, Any]
) -> None:
    page = dashboard.page
    check = expect()
    name = f"oidc-{uuid.uuid4().hex[:6]}"

    # The login page offers the provider beside the Basic form; axe finds nothing serious.
    dashboard.load_axe()
    dashboard.open()
    check(oidc_button(dashboard)).to_be_visible()
    check(page.get_by_label("Password")).to_be_visible()
    assert not dashboard.axe_violations(), describe(dashboard.axe_violations())
    dashboard.screenshot("oidc-login-page")

    # Through Keycloak's form and back: the address is clean, the header names the user.
    log_in_with_oidc(dashboard, oidc_realm, "owner", shot="oidc-keycloak-form")
    assert "code=" not in page.url and "state=" not in page.url, page.url
    session = stored_session(dashboard)
    assert session and session["oidc"]["access_token"] and session["oidc"]["refresh_token"]
    assert "password" not in session
    identity = claims(session["oidc"]["id_token"])
    subject = oidc_realm.users["owner"].subject
    assert identity["sub"] == claims(session["oidc"]["access_token"])["sub"] == subject
    shown = identity.get("name") or identity["preferred_username"]
    check(page.locator("header .who")).to_have_text(shown)

    # A service created through the form is owned by the user's subject.
    page.get_by_role("link", name="Create service").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Image", exact=True).fill("docker.io/library/alpine:3.20")
    page.get_by_role("button", name="Create service").click()
    check(page.get_by_role("heading", name=name, level=1)).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Services").click()
    row = page.locator(f'tr[data-service="{name}"]')
    check(row.locator('td[data-label="Owner"]')).to_have_text(subject)
    dashboard.screenshot("oidc-services-owner")
    assert server.client().get(f"/system/services/{name}").json()["owner"] == subject

    # Log out of oscar (the tokens are gone), then of Keycloak, back to the dashboard.
    page.get_by_role("button", name="Log out").click()
    check(page.get_by_role("heading", name="Log in to oscar")).to_be_visible()
    assert stored_session(dashboard) is None
    provider_logout = page.get_by_role("link", name=re.compile(r"^Log out of .* too$"))
    assert provider_logout.get_attribute("href").startswith(provider["end_session_endpoint"])
    provider_logout.click()
    check(oidc_button(dashboard)).to_be_visible()
    assert page.url.startswith(server.url), page.url

    # Keycloak asks again (its session ended): `stranger` does not see owner's service.
    log_in_with_oidc(dashboard, oidc_realm, "stranger")
    check(page.locator("header .who")).to_have_text(re.compile("^Stranger"))
    check(page.locator("table[data-table=services]")).to_be_visible()
    check(page.locator(f'tr[data-service="{name}"]')).to_have_count(0)
    dashboard.expected_errors.append(re.compile(r"status of (403|404)"))
    dashboard.go(f"/services/{name}")
    check(page.locator(".error-panel")).to_be_visible()
    dashboard.assert_no_console_errors()


def test_the_access_token_is_renewed_before_it_expires_and_after_a_401(
    dashboard: Dashboard, oidc_realm: Any, provider: dict[str, Any]
) -> None:
    page = dashboard.page
    check = expect()
    dashboard.open()
    log_in_with_oidc(dashboard, oidc_realm, "owner")
    first = stored_session(dashboard)["oidc"]
    refreshes: list[dict[str, list[str]]] = []

    def on_request(request: Request) -> None:
        if request.url == provider["token_endpoint"]:
            refreshes.append(parse_qs(request.post_data or ""))

    page.on("request", on_request)

    # About to expire: renewed before the next call.
    change_tokens(dashboard, expires_at="Date.now() + 1000")
    page.reload()
    check(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    assert [r["grant_type"] for r in refreshes] == [["refresh_token"]]
    second = stored_session(dashboard)["oidc"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_at"] > first["expires_at"]

    # Refused by the server (401): renewed once, and the call made again.
    dashboard.expected_errors.append(re.compile(r"status of 401"))
    change_tokens(dashboard, access_token="'not-a-token'")
    page.reload()
    check(page.get_by_role("heading", name="Services", level=1)).to_be_visible()
    assert len(refreshes) == 2
    third = stored_session(dashboard)["oidc"]["access_token"]
    assert third not in ("not-a-token", second["access_token"])
    dashboard.assert_no_console_errors()


def test_failed_logins_are_explained_on_the_login_page(
    dashboard: Dashboard, server: RunningServer, oidc_realm: Any, provider: dict[str, Any]
) -> None:
    page = dashboard.page
    check = expect()
    alert = page.get_by_role("alert")
    login_heading = page.get_by_role("heading", name="Log in to oscar")
    tokens_asked: list[str] = []

    def on_request(request: Request) -> None:
        if request.url == provider["token_endpoint"]:
            tokens_asked.append(request.url)

    page.on("request", on_request)

    # Keycloak's own pages (its login form, shown in this tab) may fail to load one of their
    # resources; that is the provider's, not the dashboard's (whose errors stay unexpected).
    provider_origin = "{0.scheme}://{0.netloc}/".format(urlsplit(oidc_realm.issuer))
    dashboard.expected_errors.append(re.compile(r"status of 404 .*\[" + re.escape(provider_origin)))

    # A real code with a tampered state: refused before the code is exchanged.
    dashboard.open()
    callbacks: list[str] = []

    # Keycloak answers its login form with a redirect to the dashboard, which Playwright cannot
    # intercept (a route sees only a redirect's first request): the form's POST is sent by the
    # test, and its answer's Location kept instead of followed.
    login_form = re.compile(re.escape(oidc_realm.issuer) + r"/login-actions/authenticate")

    def hold(route: Route) -> None:
        answer = route.fetch(max_redirects=0)
        callbacks.append(answer.headers["location"])
        route.fulfill(status=200, content_type="text/plain", body="held by the test")

    page.route(login_form, hold)
    oidc_button(dashboard).click()
    keycloak_login(dashboard, oidc_realm, "owner")
    check(page.locator("body")).to_have_text("held by the test")
    page.unroute(login_form)
    answer = urlsplit(callbacks[0])
    query = {key: values[0] for key, values in parse_qs(answer.query).items()}
    assert query["code"] and query["state"]
    page.goto(f"{server.url}/ui?{urlencode({**query, 'state': 'tampered-' + query['state']})}")
    check(alert).to_contain_text("wrong state")
    check(login_heading).to_be_visible()
    assert "code=" not in page.url
    assert stored_session(dashboard) is None
    assert tokens_asked == []
    dashboard.screenshot("oidc-error-state")
    # The genuine answer, replayed afterwards, matches no login any more.
    page.goto(callbacks[0])
    check(alert).to_contain_text("matches no login started in this tab")
    assert tokens_asked == []

    # The provider answers access_denied (Keycloak, which has a session for this browser now,
    # would log in at once: the test answers for it).
    authorize = re.compile(re.escape(provider["authorization_endpoint"]) + r"\?")
    asked: list[str] = []

    def deny(route: Route) -> None:
        asked.append(route.request.url)
        state = parse_qs(urlsplit(route.request.url).query)["state"][0]
        denied = {"error": "access_denied", "error_description": "The user said no", "state": state}
        route.fulfill(status=302, headers={"Location": f"{server.url}/ui?{urlencode(denied)}"})

    page.route(authorize, deny)
    oidc_button(dashboard).click()
    check(alert).to_have_text("The identity provider denied access: The user said no.")
    check(login_heading).to_be_visible()
    page.unroute(authorize)
    request = parse_qs(urlsplit(asked[0]).query)
    assert request["code_challenge_method"] == ["S256"]
    assert request["redirect_uri"] == [f"{server.url}/ui"]
    assert request["client_id"] == [CLIENT_ID]
    assert len(request["code_challenge"][0]) == 43  # base64url of a SHA-256 digest

    # The provider cannot be reached.
    dashboard.expected_errors.append(re.compile(r"ERR_FAILED|Failed to fetch"))
    page.route(re.compile(re.escape(oidc_realm.issuer) + r"/\.well-known/.*"), lambda r: r.abort())
    oidc_button(dashboard).click()
    check(alert).to_contain_text("Cannot reach the identity provider")
    check(oidc_button(dashboard)).to_be_enabled()
    check(page.get_by_label("Password")).to_be_visible()
    dashboard.screenshot("oidc-error-unreachable")
    assert stored_session(dashboard) is None
    dashboard.assert_no_console_errors()
