// Services: every service of the cluster, searchable and filterable (name, image, backend,
// owner), with the state of what serves its calls. The filters live in the address (#/services?q=…)
// so a filtered list can be bookmarked or shared.
import { badge, dataTable, field, h, replace } from "../dom.js";

const BACKENDS = [
  ["", "Any backend"],
  ["cloud", "Cloud"],
  ["hpc", "HPC"],
  ["auto", "Automatic"],
];
const BACKEND_LABELS = Object.fromEntries(BACKENDS.filter(([value]) => value));

/** Where a service's jobs run, as the list shows it: its `routing`, HPC for an interLink node. */
export function backendOf(service) {
  if (service.interlink_node_name) return "hpc";
  return service.routing || "cloud";
}

function matches(service, filters) {
  const text = filters.q.toLowerCase();
  if (text && !service.name.toLowerCase().includes(text)) return false;
  if (filters.image && !(service.image || "").toLowerCase().includes(filters.image.toLowerCase())) return false;
  if (filters.backend && backendOf(service) !== filters.backend) return false;
  if (filters.owner && (service.owner || "") !== filters.owner) return false;
  return true;
}

function stateBadge(service) {
  const deployment = service.deployment;
  if (!deployment) return badge("unknown", "idle");
  const title = deployment.reason || "";
  const element = badge(deployment.state, deployment.state === "degraded" ? "failed" : deployment.state);
  if (title) element.title = title;
  return element;
}

function row(service) {
  const href = `#/services/${encodeURIComponent(service.name)}`;
  const inputs = (service.input || []).map((io) => io.path).join(", ");
  return h(
    "tr",
    { dataset: { service: service.name } },
    h("th", { scope: "row" }, h("a", { href }, service.name)),
    h("td", { class: "mono cell-image", title: service.image, "data-label": "Image" }, service.image),
    h("td", { "data-label": "Backend" }, badge(BACKEND_LABELS[backendOf(service)] || backendOf(service), backendOf(service))),
    h("td", { "data-label": "Calls" }, service.synchronous?.max_scale || service.synchronous?.min_scale ? "sync + async" : "async"),
    h("td", { class: "mono", "data-label": "Inputs" }, inputs || "–"),
    h("td", { "data-label": "Owner" }, service.owner || "–"),
    h("td", { "data-label": "State" }, stateBadge(service)),
  );
}

export default async function render(ctx) {
  ctx.setTitle("Services");
  const services = await ctx.api.services("deployment");
  if (!ctx.isCurrent()) return;
  const filters = {
    q: ctx.query.get("q") || "",
    image: ctx.query.get("image") || "",
    backend: ctx.query.get("backend") || "",
    owner: ctx.query.get("owner") || "",
  };
  const search = h("input", { type: "search", value: filters.q, placeholder: "Name contains …", autocomplete: "off" });
  const image = h("input", { type: "search", value: filters.image, placeholder: "Image contains …", autocomplete: "off" });
  const backend = h(
    "select",
    {},
    BACKENDS.map(([value, label]) => h("option", { value, selected: value === filters.backend }, label)),
  );
  const owners = [...new Set(services.map((service) => service.owner).filter(Boolean))].sort();
  const owner = h(
    "select",
    {},
    h("option", { value: "" }, "Any owner"),
    owners.map((name) => h("option", { value: name, selected: name === filters.owner }, name)),
  );
  const body = h("tbody");
  const count = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const table = dataTable({
    caption: "Services",
    columns: ["Name", "Image", "Backend", "Calls", "Inputs", "Owner", "State"],
    body,
    name: "services",
    className: "stack",
  });

  const update = () => {
    Object.assign(filters, { q: search.value.trim(), image: image.value.trim(), backend: backend.value, owner: owner.value });
    const shown = services.filter((service) => matches(service, filters));
    replace(body, shown.map(row));
    if (!services.length) {
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No service yet. Create one from a form or an FDL file.")));
    } else if (!shown.length) {
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No service matches these filters.")));
    }
    count.textContent = `${shown.length} of ${services.length} service${services.length === 1 ? "" : "s"}`;
    const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value)).toString();
    history.replaceState(null, "", `#/services${query ? `?${query}` : ""}`);
  };
  for (const control of [search, image]) control.addEventListener("input", update);
  for (const control of [backend, owner]) control.addEventListener("change", update);

  replace(
    ctx.root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Services"),
      h("div", { class: "actions" }, h("a", { class: "button primary", href: "#/services/new" }, "Create service")),
    ),
    h(
      "div",
      { class: "panel" },
      h(
        "div",
        { class: "toolbar", role: "search", "aria-label": "Filter services" },
        field({ label: "Search", input: search, name: "q" }),
        field({ label: "Image", input: image, name: "image" }),
        field({ label: "Backend", input: backend, name: "backend" }),
        field({ label: "Owner", input: owner, name: "owner" }),
      ),
      count,
      table,
    ),
  );
  update();
}
