// Login: the cluster's endpoint, then either its OIDC provider (when the server offers one at
// /auth/config: authorization code + PKCE, see ../oidc.js) or Basic credentials, checked against
// /system/config (which needs them) before they are kept for this tab.
import { ApiError, Session, client } from "../api.js";
import { field, h, replace } from "../dom.js";
import { beginLogin, issuerLabel, serverConfig, takeNotice } from "../oidc.js";

export default async function render(ctx) {
  ctx.setTitle("Log in");
  const saved = Session.load();
  const notice = takeNotice();
  const endpoint = h("input", { type: "url", required: true, autocomplete: "url", value: saved?.endpoint || location.origin });
  const username = h("input", { type: "text", required: true, autocomplete: "username", value: saved?.oidc ? "oscar" : saved?.username || "oscar" });
  const password = h("input", { type: "password", required: true, autocomplete: "current-password" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  // The server's providers, one button each; empty until /auth/config has answered.
  const providers = h("div", { class: "oidc-login", hidden: true });

  // One alert, shown where it belongs: above the OIDC buttons, or above the Basic form's button.
  const showError = (message, oidc = false) => {
    error.textContent = message;
    error.hidden = false;
    if (oidc) providers.before(error);
    else submit.parentElement.before(error);
  };

  const startOidc = async (config, issuer, button) => {
    error.hidden = true;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = "Redirecting …";
    try {
      const next = ctx.query.get("next");
      await beginLogin({ endpoint: endpoint.value.trim(), issuer, clientId: config.client_id, scopes: config.scopes, next });
    } catch (failure) {
      showError(failure.message, true);
      button.disabled = false;
      button.textContent = label;
    }
  };

  let asked = null;
  const offerOidc = async () => {
    const value = endpoint.value.trim();
    if (value === asked) return;
    asked = value;
    const config = value ? await serverConfig(value) : null;
    if (asked !== value || !ctx.isCurrent()) return;
    const several = config?.issuers.length > 1;
    replace(
      providers,
      config?.issuers.map((issuer) =>
        h(
          "button",
          {
            type: "button",
            class: "primary",
            dataset: { issuer },
            onclick: (event) => startOidc(config, issuer, event.currentTarget),
          },
          several ? `Log in with OIDC (${issuerLabel(issuer)})` : "Log in with OIDC",
        ),
      ),
      config && h("p", { class: "muted or" }, "or as the cluster's admin:"),
    );
    providers.hidden = !config;
  };
  endpoint.addEventListener("change", offerOidc);

  const form = h(
    "form",
    { class: "panel", novalidate: true },
    h("h1", {}, "Log in to oscar"),
    ctx.query.get("expired") && h("p", { class: "muted" }, "Your session ended: log in again."),
    notice?.logout &&
      h(
        "p",
        { class: "muted" },
        "You have logged out of oscar. ",
        h("a", { href: notice.logout }, `Log out of ${notice.provider} too`),
      ),
    field({ label: "Endpoint", input: endpoint, hint: "The address of the oscar server.", name: "endpoint" }),
    providers,
    field({ label: "Username", input: username, name: "username" }),
    field({ label: "Password", input: password, name: "password" }),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!endpoint.value.trim() || !username.value || !password.value) {
      showError("Enter the endpoint, your username and your password.");
      return;
    }
    const session = new Session(endpoint.value.trim(), username.value, password.value);
    submit.disabled = true;
    submit.textContent = "Logging in …";
    try {
      await client(session).config();
      session.save();
      ctx.navigate(ctx.query.get("next") || "/services", { replace: true });
    } catch (failure) {
      const status = failure instanceof ApiError ? failure.status : 0;
      showError(
        status === 401 || status === 403
          ? "Wrong username or password."
          : `Cannot log in: ${failure.detail || failure.message}`,
      );
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  replace(ctx.root, h("div", { class: "login" }, form));
  if (notice?.error) showError(notice.error, true);
  offerOidc();
  (saved && !saved.oidc ? password : endpoint.value ? username : endpoint).focus();
  if (username.value && !saved) password.focus();
}
