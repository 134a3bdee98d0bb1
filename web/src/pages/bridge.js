// One bridge: its full status (refreshed every few seconds), its definition with credentials
// shown only as "set", and Edit, Enable/Disable (a PUT with `enabled` toggled and no credentials,
// so the stored ones are kept) and Delete.
import { CREDENTIAL_LABELS, TYPES, editableBridge, stateBadge, typeLabel } from "../bridge-schema.js";
import { confirmDialog, formatTime, h, keepFocus, notify, poll, replace } from "../dom.js";
import { toYaml } from "../fdl.js";
import { POLL_MS, lastEvent } from "./bridges.js";

const enc = encodeURIComponent;
const props = (pairs) => h("dl", { class: "props" }, pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
const muted = (text) => h("span", { class: "muted" }, text);
const explained = (value, why) => [String(value ?? 0), muted(` · ${why}`)];

function statusProps(status) {
  const since = status.since ? muted(` since ${formatTime(status.since)}`) : null;
  return props([
    ["State", h("span", { "data-cell": "state" }, stateBadge(status.state), since)],
    ["Message", h("span", { "data-cell": "message", class: "message" }, status.message || "–")],
    ["Last event", [lastEvent(status), status.last_event ? muted(` (${formatTime(status.last_event)})`) : null]],
    ["Events", h("span", { "data-cell": "events" }, explained(status.events, "recorded: new jobs and refused ones"))],
    ["Duplicates", explained(status.duplicates, "recognised as recorded before")],
    ["Refused", explained(status.refused, "recorded as Failed jobs: they cannot be processed")],
    ["Ignored", explained(status.ignored, "for objects outside the service's inputs")],
    ["Lag", status.lag === null || status.lag === undefined ? muted("unknown (the source cannot tell)") : explained(status.lag, "events waiting at the source")],
    ["Pending jobs", explained(status.pending, "of the service at the last look")],
    ["Errors", explained(status.errors, "since the bridge started")],
    ["Last error", formatTime(status.last_error)],
    status.retry_at && ["Next attempt", formatTime(status.retry_at)],
  ]);
}

function shown(item, value) {
  if (value === undefined || value === null || value === "") return h("span", { class: "muted", title: item.hint }, item.default !== undefined ? `${item.default} (default)` : "default");
  if (item.kind === "bool") return value ? "yes" : "no";
  return item.kind === "number" || item.kind === "choice" ? String(value) : h("span", { class: "mono" }, String(value));
}

function definitionPanel(bridge) {
  const type = TYPES[bridge.type];
  const stored = Object.keys(bridge.credentials || {}).sort();
  const credentials = stored.length
    ? h("ul", { class: "plain" }, stored.map((key) => h("li", { dataset: { credential: key } }, `${CREDENTIAL_LABELS[key] || key}: set`)))
    : muted("none");
  return h(
    "section",
    { class: "panel", "aria-labelledby": "definition-title" },
    h("h2", { id: "definition-title" }, "Definition"),
    props([
      ["Type", `${typeLabel(bridge.type)} (${bridge.type})`],
      ["Service", h("a", { href: `#/services/${enc(bridge.service)}` }, bridge.service)],
      ["Enabled", bridge.enabled ? "yes" : "no"],
      ["Interval", `${bridge.interval} s`],
      ["Max pending", bridge.max_pending ?? muted("the server's default (OSCAR_BRIDGE_MAX_PENDING)")],
      ...(type?.fields || []).map((item) => [item.label, shown(item, bridge[item.key])]),
      ["Credentials", credentials],
    ]),
    h("details", { class: "definition" }, h("summary", {}, "Definition (YAML)"), h("pre", { class: "code" }, toYaml(editableBridge(bridge)))),
  );
}

export default async function render(ctx) {
  const name = ctx.params.name;
  let bridge = await ctx.api.bridge(name);
  if (!ctx.isCurrent()) return;
  ctx.setTitle(`Bridge ${name}`);
  const headBadge = h("span", { "data-cell": "head-state" });
  const statusHost = h("div");
  const definitionHost = h("div");
  const toggle = h("button", { type: "button" });
  const problem = h("p", { class: "alert", role: "alert", hidden: true });

  const show = () => {
    replace(headBadge, stateBadge(bridge.status?.state));
    keepFocus(statusHost, () => replace(statusHost, statusProps(bridge.status || {})));
    toggle.textContent = bridge.enabled ? "Disable" : "Enable";
  };
  const showDefinition = () => replace(definitionHost, definitionPanel(bridge));

  toggle.addEventListener("click", async () => {
    const { status, credentials, ...definition } = bridge; // credentials left out: they are kept
    definition.enabled = !bridge.enabled;
    toggle.disabled = true;
    toggle.setAttribute("aria-busy", "true");
    try {
      bridge = await ctx.api.updateBridge(name, definition);
      if (!ctx.isCurrent()) return;
      show();
      showDefinition();
      notify(bridge.enabled ? `Bridge ${name} enabled.` : `Bridge ${name} disabled: it no longer reads its source.`, "success");
    } catch (error) {
      if (error.status === 401) throw error;
      notify(`Cannot ${definition.enabled ? "enable" : "disable"} ${name}: ${error.detail || error.message}`, "error");
    } finally {
      toggle.disabled = false;
      toggle.removeAttribute("aria-busy");
    }
  });
  const remove = async () => {
    const question = `Delete the bridge ${name}? It stops watching its source and forgets how far it got; the jobs it started stay.`;
    if (!(await confirmDialog(question))) return;
    try {
      await ctx.api.deleteBridge(name);
      notify(`Deleted bridge ${name}.`, "success");
      ctx.navigate("/bridges");
    } catch (error) {
      if (error.status === 401) throw error;
      notify(`Cannot delete ${name}: ${error.detail || error.message}`, "error");
    }
  };

  show();
  showDefinition();
  replace(
    ctx.root,
    h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/bridges" }, "Bridges"), "/", h("span", { "aria-current": "page" }, name)),
    h(
      "div",
      { class: "page-head" },
      h("div", { class: "bridge-title" }, h("h1", {}, name), headBadge),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: `#/bridges/${enc(name)}/edit` }, "Edit"),
        toggle,
        h("button", { type: "button", class: "danger", onclick: remove }, "Delete bridge"),
      ),
    ),
    problem,
    h(
      "div",
      { class: "service-grid" },
      h(
        "section",
        { class: "panel", "aria-labelledby": "status-title" },
        h("h2", { id: "status-title" }, "Status"),
        h("p", { class: "hint status-hint" }, `Updated every ${POLL_MS / 1000} seconds; the counters start again when the bridge restarts.`),
        statusHost,
      ),
      definitionHost,
    ),
  );

  const stop = poll(
    async () => {
      const next = await ctx.api.bridge(name);
      if (!ctx.isCurrent()) return;
      const changed = JSON.stringify(editableBridge(next)) !== JSON.stringify(editableBridge(bridge));
      bridge = next;
      problem.hidden = true;
      show();
      if (changed) showDefinition();
    },
    POLL_MS,
    (error) => {
      if (error.status === 401) throw error;
      if (!ctx.isCurrent()) return;
      problem.textContent = error.status === 404 ? `The bridge ${name} no longer exists.` : `Cannot refresh the status: ${error.detail || error.message}`;
      problem.hidden = false;
      if (error.status === 404) stop();
    },
    { wait: true },
  );
  ctx.onCleanup(stop);
}
