// Login: the cluster's endpoint and Basic credentials, checked against /system/config (which
// needs them) before they are kept for this tab.
import { ApiError, Session, client } from "../api.js";
import { field, h, replace } from "../dom.js";

export default async function render(ctx) {
  ctx.setTitle("Log in");
  const saved = Session.load();
  const endpoint = h("input", { type: "url", required: true, autocomplete: "url", value: saved?.endpoint || location.origin });
  const username = h("input", { type: "text", required: true, autocomplete: "username", value: saved?.username || "oscar" });
  const password = h("input", { type: "password", required: true, autocomplete: "current-password" });
  const error = h("p", { class: "alert", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    h("h1", {}, "Log in to oscar"),
    ctx.query.get("expired") && h("p", { class: "muted" }, "Your session ended: log in again."),
    field({ label: "Endpoint", input: endpoint, hint: "The address of the oscar server.", name: "endpoint" }),
    field({ label: "Username", input: username, name: "username" }),
    field({ label: "Password", input: password, name: "password" }),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!endpoint.value.trim() || !username.value || !password.value) {
      error.textContent = "Enter the endpoint, your username and your password.";
      error.hidden = false;
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
      error.textContent =
        status === 401 || status === 403
          ? "Wrong username or password."
          : `Cannot log in: ${failure.detail || failure.message}`;
      error.hidden = false;
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  });
  replace(ctx.root, h("div", { class: "login" }, form));
  (saved ? password : endpoint.value ? username : endpoint).focus();
  if (username.value && !saved) password.focus();
}
