// System: the server (/system/info), what it runs on (/system/status: nodes, interLink virtual
// nodes, Slurm partitions) and three charts refreshed every 5 s — jobs per minute by status,
// run time per service, and the queue of each backend. Every chart has its numbers in a table
// too, for screen readers and for copying. uPlot is imported here only, so it loads with this
// page and not with the dashboard's first load.
import uPlot from "uplot";
import { allJobs } from "../api.js";
import { badge, dataTable, formatBytes, formatDuration, h, keepFocus, poll, replace } from "../dom.js";

const POLL_MS = 5000;
const MINUTES = 60;
const STATUSES = ["Succeeded", "Failed", "Running", "Pending"]; // bottom to top of the stack
const STATUS_COLOURS = { Succeeded: "--chart-2", Failed: "--chart-3", Running: "--chart-1", Pending: "--chart-5" };
const BACKEND_COLOURS = ["--chart-1", "--chart-5", "--chart-4", "--chart-2", "--chart-3"];
const MAX_QUEUE_SAMPLES = 720; // an hour at one sample every 5 s
const QUEUE_ROWS = 60; // samples listed in the queue chart's table, newest first

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** A table; `headers` are labels or [label, "num"] for right-aligned number columns. */
function table(name, caption, columns, rows) {
  const body = h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "None")));
  return dataTable({ caption, columns, body, name, focusable: true });
}

const num = (value) => h("td", { class: "num" }, String(value ?? "–"));

function infoPanel(info) {
  const pairs = [
    ["Server name", info.name],
    ["oscar version", info.oscar_version],
    ["OSCAR API version", info.version],
    ["Commit", info.git_commit || "–"],
    ["Architecture", info.architecture],
    ["Kubernetes", info.kubernetes_version || "none (embedded)"],
  ];
  return h(
    "section",
    { class: "panel", "aria-labelledby": "info-title" },
    h("h2", { id: "info-title" }, "Server"),
    h("dl", { class: "props" }, pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value || "–")])),
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
    { dataset: { node: node.name } },
    h("th", { scope: "row" }, node.name, node.is_interlink ? h("span", { class: "muted" }, " (interLink virtual node)") : null),
    h("td", {}, badge(node.status || "Unknown", node.status === "Ready" ? "ready" : "notready")),
    num(`${cpu.request_cores ?? "–"} / ${cpu.capacity_cores ?? "–"}`),
    num(`${formatBytes(memory.request_bytes)} / ${formatBytes(memory.capacity_bytes)}`),
    num(node.gpu ?? 0),
  );
}

function partitionRow(partition) {
  const cpus = partition.cpus || {};
  return h(
    "tr",
    { dataset: { partition: partition.name } },
    h("th", { scope: "row" }, partition.name),
    h("td", {}, partition.default ? "yes" : "no"),
    h("td", {}, partition.available ? badge("up", "ready") : badge("down", "notready")),
    num(partition.nodes),
    num(`${cpus.allocated ?? 0} / ${cpus.idle ?? 0} / ${cpus.total ?? 0}`),
    num(formatBytes(partition.memory_per_node_bytes)),
    num(partition.gpus_per_node ?? 0),
    h("td", {}, partition.time_limit || "–"),
  );
}

function slurm(hpc) {
  if (!hpc) return h("p", { class: "muted" }, "No Slurm backend is configured (OSCAR_HPC_EXECUTOR).");
  if (hpc.error) return h("p", { class: "alert" }, `Slurm did not answer: ${hpc.error}`);
  const headers = ["Partition", "Default", "State", ["Nodes", "num"], ["CPUs allocated / idle / total", "num"], ["Memory per node", "num"], ["GPUs per node", "num"], "Time limit"];
  return table("partitions", "Slurm partitions", headers, (hpc.partitions || []).map(partitionRow));
}

function statusPanel(status) {
  const cluster = status.cluster || {};
  const nodes = cluster.nodes || [];
  const virtual = nodes.filter((node) => node.is_interlink);
  const states = status.oscar?.pods?.states || {};
  const free = cluster.metrics || {};
  const stateNames = [...STATUSES, ...Object.keys(states).filter((name) => !STATUSES.includes(name))];
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
      stateNames.map((name) => card(`${name} jobs`, states[name] || 0)),
      card("Buckets", status.minio?.buckets_count ?? "–"),
      card("Objects", status.minio?.total_objects ?? "–"),
    ),
    h("h3", { class: "section-title" }, "Nodes"),
    table("nodes", "Nodes", ["Node", "Status", ["CPU cores requested / capacity", "num"], ["Memory requested / capacity", "num"], ["GPUs", "num"]], nodes.map(nodeRow)),
    h("h3", { class: "section-title" }, "interLink virtual nodes"),
    virtual.length
      ? h("ul", { class: "virtual-nodes" }, virtual.map((node) => h("li", {}, `${node.name}: ${node.status || "unknown"}`)))
      : h("p", { class: "muted" }, "No interLink virtual node."),
    h("h3", { class: "section-title" }, "Slurm partitions"),
    slurm(status.hpc),
  );
}

/** Jobs created in each of the last MINUTES minutes (unix seconds of each minute), by their status now. */
export function jobsPerMinute(jobs, now = Date.now()) {
  const last = Math.floor(now / 60000) * 60;
  const first = last - (MINUTES - 1) * 60;
  const minutes = Array.from({ length: MINUTES }, (_, i) => first + i * 60);
  const counts = Object.fromEntries(STATUSES.map((status) => [status, minutes.map(() => 0)]));
  let total = 0;
  for (const job of jobs) {
    const index = (Math.floor(Date.parse(job.creation_time) / 60000) * 60 - first) / 60;
    if (!(index >= 0 && index < MINUTES) || !counts[job.status]) continue;
    counts[job.status][index] += 1;
    total += 1;
  }
  return { minutes, counts, total };
}

/**
 * A chart in a <figure>: caption, the uPlot canvas (role img, labelled), a sentence shown
 * instead when there is nothing to plot, and the numbers in a <details> table. `update(chart,
 * table)` takes {key, options(width), data} or null; same key → new data only, else a new plot.
 */
function chartFigure(name, caption, empty) {
  const area = h("div", { class: "chart", role: "img", "aria-label": `Chart: ${caption}. Its numbers are in the table below.` });
  const note = h("p", { class: "muted chart-empty", hidden: true }, empty);
  const numbers = h("div", {});
  const details = h("details", { class: "chart-data" }, h("summary", {}, "The numbers"), numbers);
  const figure = h("figure", { class: "panel chart-figure", dataset: { chart: name } }, h("figcaption", {}, caption), area, note, details);
  let plot = null;
  let plotKey = null;
  let last = null;
  const width = () => Math.max(200, area.clientWidth || figure.clientWidth - 32);
  const drop = () => {
    plot?.destroy();
    plot = plotKey = null;
  };
  const draw = (rebuild) => {
    if (!last) return;
    const chart = last.chart;
    note.hidden = Boolean(chart);
    area.hidden = !chart;
    if (!chart) return drop();
    if (plot && !rebuild && chart.key === plotKey) return plot.setData(chart.data);
    drop();
    plot = new uPlot(chart.options(width()), chart.data, area);
    plotKey = chart.key;
  };
  const resize = new ResizeObserver(() => {
    if (plot && width() !== plot.width) plot.setSize({ width: width(), height: plot.height });
  });
  resize.observe(figure);
  return {
    element: figure,
    update(chart, table) {
      last = { chart };
      draw(false);
      keepFocus(numbers, () => replace(numbers, table));
    },
    /** The theme changed: a new plot with the new colours. */
    redraw: () => draw(true),
    destroy() {
      resize.disconnect();
      drop();
    },
  };
}

// Counts are whole numbers: no 0.2-job ticks.
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

/** Time ticks as the reader's clock time only (uPlot's default adds dates, too wide at 375 px). */
const clock = (seconds) => (_, splits) =>
  splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) }));

function axes({ whole = false, time = null } = {}) {
  const stroke = css("--muted");
  const grid = { stroke: css("--border"), width: 1 };
  const x = time ? { space: time === "seconds" ? 90 : 60, values: clock(time === "seconds") } : {};
  return [
    { stroke, grid, ticks: grid, ...x },
    { stroke, grid, ticks: grid, size: 50, ...(whole ? { incrs: WHOLE_STEPS } : {}) },
  ];
}

const fromZero = (_, __, max) => [0, max > 0 ? max * 1.1 : 1];
const LEGEND = { show: true, live: false }; // names and colours only: the values are in the table

function jobsChart(figure, jobs) {
  const { minutes, counts, total } = jobsPerMinute(jobs);
  // Stacked: each series is its status plus every status below it, drawn top first so that
  // each bar covers only its own share of the one below.
  const stacked = STATUSES.map((_, level) => minutes.map((__, i) => STATUSES.slice(0, level + 1).reduce((sum, s) => sum + counts[s][i], 0)));
  const order = [...STATUSES.keys()].reverse();
  const rows = minutes
    .map((minute, i) => [minute, STATUSES.map((status) => counts[status][i])])
    .filter(([, values]) => values.some(Boolean))
    .reverse()
    .map(([minute, values]) => h("tr", {}, h("th", { scope: "row" }, new Date(minute * 1000).toLocaleTimeString()), values.map(num)));
  const chart = total && {
    key: "jobs",
    data: [minutes, ...order.map((level) => stacked[level])],
    options: (width) => ({
      width,
      height: 240,
      legend: LEGEND,
      cursor: { show: false },
      scales: { x: { time: true, range: (u) => [u.data[0][0] - 30, u.data[0].at(-1) + 30] }, y: { range: fromZero } },
      axes: axes({ whole: true, time: "minutes" }),
      series: [
        {},
        ...order.map((level) => {
          const colour = css(STATUS_COLOURS[STATUSES[level]]);
          return { label: STATUSES[level], stroke: colour, fill: colour, width: 0, paths: uPlot.paths.bars({ size: [0.8, 24, 2] }), points: { show: false } };
        }),
      ],
    }),
  };
  figure.update(chart || null, table("jobs-per-minute", "Jobs created per minute, newest first", ["Minute", ...STATUSES.map((s) => [s, "num"])], rows));
}

function durationsChart(figure, services) {
  const measured = services.filter((service) => service.duration_seconds?.count);
  const names = measured.map((service) => service.service_name);
  const medians = measured.map((service) => service.duration_seconds.median);
  const p95s = measured.map((service) => service.duration_seconds.p95);
  const bars = (align) => uPlot.paths.bars({ size: [0.35, 48], align });
  const rows = measured.map((service, i) =>
    h("tr", {}, h("th", { scope: "row" }, names[i]), num(formatDuration(medians[i])), num(formatDuration(p95s[i])), num(service.duration_seconds.count)),
  );
  const label = (width) => {
    const room = Math.max(4, Math.floor(width / Math.max(1, names.length) / 8));
    return (name) => (name.length > room ? name.slice(0, room - 1) + "…" : name);
  };
  const chart = measured.length && {
    key: `durations:${names.join("\n")}`,
    data: [names.map((_, i) => i), medians, p95s],
    options: (width) => {
      const [x, y] = axes(); // x: one tick per service, its name cut to the room it has
      return {
        width,
        height: 240,
        legend: LEGEND,
        cursor: { show: false },
        scales: { x: { time: false, range: [-0.6, names.length - 0.4] }, y: { range: fromZero } },
        axes: [
          { ...x, splits: () => names.map((_, i) => i), values: (u, splits) => splits.map((i) => label(u.width)(names[i] ?? "")) },
          { ...y, size: 60, values: (_, splits) => splits.map(formatDuration) },
        ],
        series: [
          {},
          { label: "Median", fill: css("--chart-1"), stroke: css("--chart-1"), paths: bars(-1), points: { show: false } },
          { label: "95th percentile", fill: css("--chart-4"), stroke: css("--chart-4"), paths: bars(1), points: { show: false } },
        ],
      };
    },
  };
  figure.update(chart || null, table("durations", "Run time per service", ["Service", ["Median", "num"], ["95th percentile", "num"], ["Jobs measured", "num"]], rows));
}

function queueChart(figure, samples) {
  const backends = [...new Set(["local", ...samples.flatMap((sample) => Object.keys(sample.queued))])].sort();
  const times = samples.map((sample) => sample.time);
  const series = backends.map((backend) => samples.map((sample) => sample.queued[backend] ?? 0));
  const rows = samples
    .slice(-QUEUE_ROWS)
    .reverse()
    .map((sample) => h("tr", {}, h("th", { scope: "row" }, new Date(sample.time * 1000).toLocaleTimeString()), backends.map((b) => num(sample.queued[b] ?? 0))));
  const chart = samples.length && {
    key: `queue:${backends.join("\n")}`,
    data: [times, ...series],
    options: (width) => ({
      width,
      height: 220,
      legend: LEGEND,
      cursor: { show: false },
      // From the first sample to the last, at least a minute wide (uPlot's own range for a
      // single point is a day), so the first sample is a point on a readable axis.
      scales: { x: { time: true, range: () => [Math.min(samples[0].time, samples.at(-1).time - 60), samples.at(-1).time] }, y: { range: (_, __, max) => [0, Math.max(1, max)] } },
      axes: axes({ whole: true, time: "seconds" }),
      series: [
        {},
        ...backends.map((backend, i) => ({ label: backend, stroke: css(BACKEND_COLOURS[i % BACKEND_COLOURS.length]), width: 2, paths: uPlot.paths.stepped({ align: 1 }) })),
      ],
    }),
  };
  const caption = `Pending jobs per backend, newest first (the last ${QUEUE_ROWS} samples at most)`;
  figure.update(chart || null, table("queue", caption, ["Sampled at", ...backends.map((b) => [b, "num"])], rows));
}

export default async function render(ctx) {
  ctx.setTitle("System");
  const info = await ctx.api.info();
  if (!ctx.isCurrent()) return;
  const statusHost = h("div", {}, h("p", { class: "loading", role: "status" }, "Loading the status …"));
  const updated = h("p", { class: "muted" }); // not a live region: it changes every 5 s
  const figures = {
    jobs: chartFigure(
      "jobs-per-minute",
      "Jobs per minute over the last hour, by the minute each was created, stacked by its status now",
      "No jobs in the last hour.",
    ),
    durations: chartFigure("durations", "Run time per service over the last 24 hours: median and 95th percentile", "No finished job in the last 24 hours."),
    queue: chartFigure("queue", "Pending jobs per backend, sampled every 5 s, collected while this page is open", "Collecting the first sample …"),
  };
  const samples = [];
  let jobsSeen = [];
  let servicesSeen = [];
  const drawAll = () => {
    jobsChart(figures.jobs, jobsSeen);
    durationsChart(figures.durations, servicesSeen);
    queueChart(figures.queue, samples);
  };

  const refresh = async () => {
    const end = new Date();
    const start = new Date(end.getTime() - 24 * 3600 * 1000);
    const [status, metrics, services] = await Promise.all([ctx.api.status(), ctx.api.metrics(start.toISOString(), end.toISOString()), ctx.api.services()]);
    const perService = await Promise.all((services || []).map((service) => allJobs(ctx.api, service.name)));
    if (!ctx.isCurrent()) return;
    jobsSeen = perService.flatMap((jobs) => Object.values(jobs));
    servicesSeen = metrics?.services || [];
    // One queue sample: Pending jobs by backend (the embedded default's is "local").
    const queued = {};
    for (const job of jobsSeen) {
      const backend = job.backend || "local";
      queued[backend] ??= 0;
      if (job.status === "Pending") queued[backend] += 1;
    }
    samples.push({ time: end.getTime() / 1000, queued });
    if (samples.length > MAX_QUEUE_SAMPLES) samples.shift();
    keepFocus(statusHost, () => replace(statusHost, statusPanel(status)));
    drawAll();
    updated.textContent = `Updated ${end.toLocaleTimeString()}; refreshed every ${POLL_MS / 1000} s.`;
  };

  replace(
    ctx.root,
    h("div", { class: "page-head" }, h("h1", {}, "System"), updated),
    infoPanel(info),
    statusHost,
    h("h2", { class: "charts-title" }, "Activity"),
    h("div", { class: "charts" }, figures.jobs.element, figures.durations.element, figures.queue.element),
  );
  // Colours come from the theme's CSS variables: new plots when the theme changes, chosen
  // (data-theme) or followed from the system (no data-theme, prefers-color-scheme).
  const recolour = () => Object.values(figures).forEach((figure) => figure.redraw());
  const themeWatch = new MutationObserver(recolour);
  themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  const systemTheme = matchMedia("(prefers-color-scheme: dark)");
  systemTheme.addEventListener("change", recolour);
  const stop = poll(refresh, POLL_MS, (error) => {
    if (error.status === 401) throw error; // main.js ends the session
    if (ctx.isCurrent()) updated.textContent = `Cannot refresh: ${error.detail || error.message}`;
  });
  ctx.onCleanup(() => {
    stop();
    themeWatch.disconnect();
    systemTheme.removeEventListener("change", recolour);
    Object.values(figures).forEach((figure) => figure.destroy());
  });
}
