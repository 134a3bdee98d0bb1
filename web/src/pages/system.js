// System: the server (/system/info), what it runs on (/system/status: nodes, interLink virtual
// nodes, Slurm partitions) and three charts refreshed every few seconds — jobs per minute by
// status, run-time percentiles per service, and the queue of each backend. Every chart has its
// numbers in a table too, for screen readers and for copying.
import uPlot from "uplot";
import { allJobs } from "../api.js";
import { badge, formatBytes, formatDuration, h, poll, replace } from "../dom.js";

const POLL_MS = 5000;
const MINUTES = 60;
const STATUSES = ["Succeeded", "Failed", "Running", "Pending"];
const STATUS_COLOURS = { Succeeded: "--chart-2", Failed: "--chart-3", Running: "--chart-1", Pending: "--chart-5" };
const MAX_QUEUE_SAMPLES = 720; // an hour at one sample every 5 s

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function props(pairs) {
  return h("dl", { class: "props" }, pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "–")]));
}

function table(name, caption, headers, rows) {
  return h(
    "div",
    // Focusable, so a table wider than a phone can be scrolled from the keyboard.
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      { "data-table": name },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, "None"))),
    ),
  );
}

function infoPanel(info) {
  return h(
    "section",
    { class: "panel", "aria-labelledby": "info-title" },
    h("h2", { id: "info-title" }, "Server"),
    props([
      ["Name", info.name],
      ["oscar version", info.oscar_version],
      ["OSCAR API version", info.version],
      ["Commit", info.git_commit || "–"],
      ["Architecture", info.architecture],
      ["Kubernetes", info.kubernetes_version || "none (embedded)"],
    ]),
  );
}

function card(label, value) {
  return h("div", { class: "card" }, h("div", { class: "value" }, String(value)), h("div", { class: "label" }, label));
}

function nodeRow(node) {
  const cpu = node.cpu || {};
  const memory = node.memory || {};
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, node.name, node.is_interlink ? h("span", { class: "muted" }, " (interLink virtual node)") : null),
    h("td", {}, badge(node.status || "Unknown", node.status === "Ready" ? "ready" : "notready")),
    h("td", { class: "num" }, `${cpu.request_cores ?? "–"} / ${cpu.capacity_cores ?? "–"}`),
    h("td", { class: "num" }, `${formatBytes(memory.request_bytes)} / ${formatBytes(memory.capacity_bytes)}`),
    h("td", { class: "num" }, String(node.gpu ?? 0)),
  );
}

function partitionRow(partition) {
  const cpus = partition.cpus || {};
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, partition.name, partition.default ? h("span", { class: "muted" }, " (default)") : null),
    h("td", {}, badge(partition.available || "unknown", partition.available === "up" ? "ready" : "notready")),
    h("td", { class: "num" }, String(partition.nodes ?? "–")),
    h("td", { class: "num" }, `${cpus.allocated ?? 0} / ${cpus.idle ?? 0} / ${cpus.total ?? 0}`),
    h("td", { class: "num" }, formatBytes(partition.memory_per_node_bytes)),
    h("td", { class: "num" }, String(partition.gpus_per_node ?? 0)),
    h("td", {}, partition.time_limit || "–"),
  );
}

function statusPanel(status) {
  const cluster = status.cluster || {};
  const nodes = cluster.nodes || [];
  const virtual = nodes.filter((node) => node.is_interlink);
  const states = status.oscar?.pods?.states || {};
  const free = cluster.metrics || {};
  const hpc = status.hpc;
  return h(
    "section",
    { class: "panel", "aria-labelledby": "status-title" },
    h("h2", { id: "status-title" }, "Status"),
    h(
      "div",
      { class: "cards" },
      card("Nodes", cluster.nodes_count ?? nodes.length),
      card("Free CPU cores", free.cpu?.total_free_cores ?? "–"),
      card("Free memory", formatBytes(free.memory?.total_free_bytes)),
      STATUSES.map((name) => card(`${name} jobs`, states[name] || 0)),
      card("Buckets", status.minio?.buckets_count ?? "–"),
      card("Objects", status.minio?.total_objects ?? "–"),
    ),
    h("h3", { class: "section-title" }, "Nodes"),
    table("nodes", "Nodes", ["Node", "Status", "CPU requested / capacity", "Memory requested / capacity", "GPUs"], nodes.map(nodeRow)),
    h("h3", { class: "section-title" }, "interLink virtual nodes"),
    virtual.length
      ? h("ul", {}, virtual.map((node) => h("li", {}, `${node.name}: ${node.status || "unknown"}`)))
      : h("p", { class: "muted" }, "No interLink virtual node."),
    h("h3", { class: "section-title" }, "Slurm partitions"),
    !hpc
      ? h("p", { class: "muted" }, "No Slurm backend is configured (OSCAR_HPC_EXECUTOR).")
      : hpc.error
        ? h("p", { class: "alert", role: "alert" }, `Slurm did not answer: ${hpc.error}`)
        : table(
            "partitions",
            "Slurm partitions",
            ["Partition", "State", "Nodes", "CPUs allocated / idle / total", "Memory per node", "GPUs per node", "Time limit"],
            (hpc.partitions || []).map(partitionRow),
          ),
  );
}

/** Jobs created in each of the last MINUTES minutes, by their status now. */
export function jobsPerMinute(jobs, now = Date.now()) {
  const end = Math.floor(now / 60000) * 60;
  const minutes = Array.from({ length: MINUTES }, (_, i) => end - (MINUTES - 1 - i) * 60);
  const counts = Object.fromEntries(STATUSES.map((status) => [status, minutes.map(() => 0)]));
  let total = 0;
  for (const job of jobs) {
    const created = Math.floor(new Date(job.creation_time).getTime() / 60000) * 60;
    const index = minutes.indexOf(created);
    if (index < 0 || !counts[job.status]) continue;
    counts[job.status][index] += 1;
    total += 1;
  }
  return { minutes, counts, total };
}

/**
 * A chart in a <figure> with its caption and a data table; `build(width)` answers uPlot's
 * (options, data) or null when there is nothing to plot (then `empty` is shown).
 */
function chartFigure(name, caption, empty) {
  const area = h("div", { class: "chart", role: "img", "aria-label": caption });
  const note = h("p", { class: "muted chart-empty", hidden: true }, empty);
  const details = h("details", { class: "chart-data" }, h("summary", {}, "The numbers"));
  const figure = h("figure", { class: "panel chart-figure", dataset: { chart: name } }, h("figcaption", {}, caption), area, note, details);
  let plot = null;
  let last = null;
  const width = () => Math.max(240, area.clientWidth || figure.clientWidth - 32);
  const draw = () => {
    plot?.destroy();
    plot = null;
    if (!last) return;
    const built = last.build(width());
    note.hidden = Boolean(built);
    area.hidden = !built;
    if (built) plot = new uPlot(built.options, built.data, area);
    replace(details, h("summary", {}, "The numbers"), last.table);
  };
  const resize = new ResizeObserver(() => plot?.setSize({ width: width(), height: plot.height }));
  resize.observe(figure);
  return {
    element: figure,
    update(build, dataTable) {
      last = { build, table: dataTable };
      draw();
    },
    destroy() {
      resize.disconnect();
      plot?.destroy();
    },
  };
}

// Counts are whole numbers: no 0.2-job ticks.
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

function axes({ whole = false } = {}) {
  const stroke = css("--muted");
  const grid = { stroke: css("--border"), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, size: 50, ...(whole ? { incrs: WHOLE_STEPS } : {}) },
  ];
}

function legendStyle() {
  return { legend: { show: true, live: false } };
}

function jobsChart(figure, jobs) {
  const { minutes, counts, total } = jobsPerMinute(jobs);
  const rows = minutes
    .map((minute, i) => [minute, STATUSES.map((status) => counts[status][i])])
    .filter(([, values]) => values.some(Boolean))
    .map(([minute, values]) => h("tr", {}, h("th", { scope: "row" }, new Date(minute * 1000).toLocaleTimeString()), values.map((value) => h("td", { class: "num" }, String(value)))));
  figure.update(
    (width) =>
      total
        ? {
            options: {
              width,
              height: 240,
              ...legendStyle(),
              scales: { x: { time: true }, y: { range: (_, min, max) => [0, Math.max(1, max)] } },
              axes: axes({ whole: true }),
              series: [{}, ...STATUSES.map((status) => ({ label: status, stroke: css(STATUS_COLOURS[status]), width: 2, points: { show: false } }))],
            },
            data: [minutes, ...STATUSES.map((status) => counts[status])],
          }
        : null,
    table("jobs-per-minute", "Jobs per minute by status", ["Minute", ...STATUSES], rows),
  );
}

function durationsChart(figure, services) {
  const measured = services.filter((service) => service.duration_seconds?.count);
  const names = measured.map((service) => service.service_name);
  const medians = measured.map((service) => service.duration_seconds.median);
  const p95s = measured.map((service) => service.duration_seconds.p95);
  const bars = (align) => uPlot.paths.bars({ size: [0.35, 48], align });
  const rows = measured.map((service, i) =>
    h("tr", {}, h("th", { scope: "row" }, names[i]), h("td", { class: "num" }, formatDuration(medians[i])), h("td", { class: "num" }, formatDuration(p95s[i])), h("td", { class: "num" }, String(service.duration_seconds.count))),
  );
  figure.update(
    (width) =>
      measured.length
        ? {
            options: {
              width,
              height: 240,
              ...legendStyle(),
              scales: { x: { time: false, range: [-0.6, measured.length - 0.4] }, y: { range: (_, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
              axes: [
                { ...axes()[0], splits: () => names.map((_, i) => i), values: (_, splits) => splits.map((i) => names[i] ?? "") },
                { ...axes()[1], values: (_, splits) => splits.map((seconds) => formatDuration(seconds)) },
              ],
              series: [
                {},
                { label: "Median", fill: css("--chart-1"), stroke: css("--chart-1"), paths: bars(-1), points: { show: false } },
                { label: "95th percentile", fill: css("--chart-4"), stroke: css("--chart-4"), paths: bars(1), points: { show: false } },
              ],
            },
            data: [names.map((_, i) => i), medians, p95s],
          }
        : null,
    table("durations", "Run time per service", ["Service", "Median", "95th percentile", "Jobs measured"], rows),
  );
}

function queueChart(figure, samples) {
  const backends = [...new Set(samples.flatMap((sample) => Object.keys(sample.queued)))].sort();
  const times = samples.map((sample) => sample.time);
  const series = backends.map((backend) => samples.map((sample) => sample.queued[backend] ?? 0));
  const colours = ["--chart-1", "--chart-5", "--chart-4", "--chart-2", "--chart-3"];
  const latest = samples.at(-1);
  const rows = backends.map((backend) => h("tr", {}, h("th", { scope: "row" }, backend), h("td", { class: "num" }, String(latest?.queued[backend] ?? 0))));
  figure.update(
    (width) =>
      backends.length
        ? {
            options: {
              width,
              height: 220,
              ...legendStyle(),
              scales: { x: { time: true }, y: { range: (_, min, max) => [0, Math.max(1, max)] } },
              axes: axes({ whole: true }),
              series: [{}, ...backends.map((backend, i) => ({ label: backend, stroke: css(colours[i % colours.length]), width: 2, paths: uPlot.paths.stepped({ align: 1 }) }))],
            },
            data: [times, ...series],
          }
        : null,
    table("queue", "Jobs waiting per backend, now", ["Backend", "Pending jobs"], rows),
  );
}

export default async function render(ctx) {
  ctx.setTitle("System");
  const info = await ctx.api.info();
  if (!ctx.isCurrent()) return;
  const statusHost = h("div", {}, h("p", { class: "loading" }, "Loading the status …"));
  const updated = h("p", { class: "muted", role: "status" });
  const figures = {
    jobs: chartFigure("jobs-per-minute", "Jobs created per minute over the last hour, by their status now", "No jobs in the last hour."),
    durations: chartFigure("durations", "Run time per service over the last 24 hours: median and 95th percentile", "No finished job in the last 24 hours."),
    queue: chartFigure("queue", "Pending jobs per backend, sampled every 5 s while this page is open", "No job is waiting, and none has waited since this page opened."),
  };
  const samples = [];
  let jobsSeen = [];
  let servicesSeen = [];

  const refresh = async () => {
    const end = new Date();
    const start = new Date(end.getTime() - 24 * 3600 * 1000);
    const [status, metrics, services] = await Promise.all([ctx.api.status(), ctx.api.metrics(start.toISOString(), end.toISOString()), ctx.api.services()]);
    const perService = await Promise.all(services.map((service) => allJobs(ctx.api, service.name)));
    if (!ctx.isCurrent()) return;
    jobsSeen = perService.flatMap((jobs) => Object.values(jobs));
    servicesSeen = metrics.services || [];
    const queued = {};
    for (const job of jobsSeen) if (job.status === "Pending") queued[job.backend || "local"] = (queued[job.backend || "local"] || 0) + 1;
    samples.push({ time: end.getTime() / 1000, queued });
    if (samples.length > MAX_QUEUE_SAMPLES) samples.shift();
    replace(statusHost, statusPanel(status));
    drawAll();
    updated.textContent = `Updated ${end.toLocaleTimeString()}; refreshed every ${POLL_MS / 1000} s.`;
  };
  const drawAll = () => {
    jobsChart(figures.jobs, jobsSeen);
    durationsChart(figures.durations, servicesSeen);
    queueChart(figures.queue, samples.some((sample) => Object.keys(sample.queued).length) ? samples : []);
  };

  replace(
    ctx.root,
    h("div", { class: "page-head" }, h("h1", {}, "System"), updated),
    h("div", { class: "grid system-top" }, infoPanel(info)),
    statusHost,
    h("h2", { class: "charts-title" }, "Activity"),
    h("div", { class: "charts" }, figures.jobs.element, figures.durations.element, figures.queue.element),
  );
  // Colours are read from the theme's variables: draw again when the theme changes.
  const themeWatch = new MutationObserver(drawAll);
  themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  const stop = poll(refresh, POLL_MS, (error) => {
    if (error.status === 401) throw error;
    updated.textContent = `Cannot refresh: ${error.detail || error.message}`;
  });
  ctx.onCleanup(() => {
    stop();
    themeWatch.disconnect();
    Object.values(figures).forEach((figure) => figure.destroy());
  });
}
