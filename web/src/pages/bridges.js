// Bridges: every event bridge and what it is doing (its state, the last event, the lag at its
// source, its counters and its message, such as the last error), refreshed every few seconds
// (four times slower while the tab is hidden) without reloading the page.
import { stateBadge, typeLabel } from "../bridge-schema.js";
import { dataTable, formatAge, formatTime, h, keepFocus, poll, replace } from "../dom.js";

export const POLL_MS = 3000;
const COLUMNS = [
  "Name",
  "Type",
  "Service",
  "State",
  "Last event",
  ["Lag", "num"],
  ["Events", "num"],
  ["Duplicates", "num"],
  ["Refused", "num"],
  ["Ignored", "num"],
  "Message",
];
const enc = encodeURIComponent;

/** When the last event was recorded, as an age (the exact time in its tooltip). */
export function lastEvent(status) {
  if (!status?.last_event) return h("span", { class: "muted" }, "never");
  return h("time", { datetime: status.last_event, title: formatTime(status.last_event) }, formatAge(status.last_event_age));
}

/** What the bridge says about itself: its message and, after a failure, when it tries again. */
function statusMessage(status) {
  const parts = [status?.message || ""];
  if (status?.state === "error" && status.retry_at) parts.push(`Next attempt at ${new Date(status.retry_at).toLocaleTimeString()}.`);
  return parts.filter(Boolean).join(" ");
}

const num = (label, value) => h("td", { class: "num", "data-label": label }, value === null || value === undefined ? "–" : String(value));

function row(bridge) {
  const status = bridge.status || {};
  const message = statusMessage(status);
  return h(
    "tr",
    { dataset: { bridge: bridge.name, state: status.state || "unknown" } },
    h("th", { scope: "row" }, h("a", { href: `#/bridges/${enc(bridge.name)}`, "data-focus": `bridge:${bridge.name}` }, bridge.name)),
    h("td", { "data-label": "Type", title: typeLabel(bridge.type) }, bridge.type),
    h(
      "td",
      { "data-label": "Service" },
      h("a", { href: `#/services/${enc(bridge.service)}`, "data-focus": `service:${bridge.name}` }, bridge.service),
    ),
    h("td", { "data-label": "State", "data-cell": "state" }, stateBadge(status.state)),
    h("td", { "data-label": "Last event" }, lastEvent(status)),
    num("Lag", status.lag),
    h("td", { class: "num", "data-label": "Events", "data-cell": "events" }, String(status.events ?? 0)),
    num("Duplicates", status.duplicates ?? 0),
    num("Refused", status.refused ?? 0),
    num("Ignored", status.ignored ?? 0),
    h("td", { class: "reason", "data-label": "Message", "data-cell": "message" }, message || h("span", { class: "muted" }, "–")),
  );
}

/**
 * Show `bridges` in `body`, keeping each row whose content did not change (so a refresh leaves
 * the focus, a hover and a screen reader's place alone where nothing moved).
 */
function update(body, bridges) {
  const previous = new Map([...body.children].map((element) => [element.dataset.bridge, element]));
  const rows = bridges.map((bridge) => {
    const fresh = row(bridge);
    const old = previous.get(bridge.name);
    return old && old.outerHTML === fresh.outerHTML ? old : fresh;
  });
  keepFocus(body, () => {
    rows.forEach((element, index) => {
      const present = body.children[index];
      if (present === element) return;
      if (present && !rows.includes(present)) present.replaceWith(element);
      else body.insertBefore(element, present || null);
    });
    while (body.children.length > rows.length) body.lastElementChild.remove();
  });
}

function emptyState() {
  return h(
    "div",
    { class: "empty-state" },
    h("h2", {}, "No bridge yet"),
    h(
      "p",
      {},
      "A bridge watches a store or a queue outside this cluster — a WebDAV or dCache folder, an SQS queue, a Kafka topic, a MinIO bucket that cannot notify this server — and turns each new file or message into a job of one service.",
    ),
    h("p", { class: "muted" }, "It records every event durably before it moves on, pauses while the service has too many pending jobs, and shows here what it is doing and why it fails."),
    h("p", {}, h("a", { class: "button primary", href: "#/bridges/new" }, "Create bridge")),
  );
}

/** "3 bridges: 2 running, 1 error". */
function summaryOf(bridges) {
  const counts = {};
  for (const bridge of bridges) {
    const state = bridge.status?.state || "unknown";
    counts[state] = (counts[state] || 0) + 1;
  }
  const states = Object.entries(counts).map(([state, count]) => `${count} ${state}`).join(", ");
  return `${bridges.length} bridge${bridges.length === 1 ? "" : "s"}${bridges.length ? `: ${states}` : ""}`;
}

export default async function render(ctx) {
  ctx.setTitle("Bridges");
  const body = h("tbody");
  const count = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const problem = h("p", { class: "alert", role: "alert", hidden: true });
  const table = dataTable({
    caption: `Bridges, updated every ${POLL_MS / 1000} seconds`,
    columns: COLUMNS,
    body,
    name: "bridges",
    className: "stack bridge-list",
  });
  const empty = emptyState();
  const refresh = async () => {
    const bridges = await ctx.api.bridges();
    if (!ctx.isCurrent()) return;
    bridges.sort((a, b) => a.name.localeCompare(b.name));
    update(body, bridges);
    table.hidden = !bridges.length;
    empty.hidden = Boolean(bridges.length);
    problem.hidden = true;
    const summary = summaryOf(bridges);
    if (count.textContent !== summary) count.textContent = summary; // announced only when it changes
  };
  await refresh();
  if (!ctx.isCurrent()) return;
  replace(
    ctx.root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Bridges"),
      h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/bridges/new" }, "Create bridge")),
    ),
    h(
      "div",
      { class: "panel" },
      h("p", { class: "hint" }, "Event sources outside the cluster that start jobs: their state, their last event and what they counted since they started."),
      count,
      problem,
      table,
      empty,
    ),
  );
  const stop = poll(
    refresh,
    POLL_MS,
    (error) => {
      if (error.status === 401) throw error; // main.js ends the session
      if (!ctx.isCurrent()) return;
      problem.textContent = `Cannot refresh the bridges: ${error.detail || error.message}`;
      problem.hidden = false;
    },
    { wait: true },
  );
  ctx.onCleanup(stop);
}

