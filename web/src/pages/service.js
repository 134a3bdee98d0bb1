// One service: its definition and token, a synchronous invocation (text or a file), its jobs
// with live status (polled), the log viewer with follow, job deletion, and the FDL to download.
import { allJobs } from "../api.js";
import {
  badge,
  confirmDialog,
  copyText,
  dataTable,
  downloadBlob,
  field,
  formatBytes,
  formatDuration,
  formatTime,
  h,
  notify,
  poll,
  replace,
} from "../dom.js";
import { stateBadge } from "../bridge-schema.js";
import { editableDefinition, toFdl, toYaml } from "../fdl.js";
import { backendOf } from "./services.js";

const JOB_POLL_MS = 2000;
const LOG_POLL_MS = 2000;
const ENDED = new Set(["Succeeded", "Failed"]);

function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** The bytes of a base64 answer, or null when the answer is not base64 (a script's own output). */
function base64ToBytes(text) {
  const compact = text.replace(/\s+/g, "");
  if (!compact || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return null;
  try {
    return Uint8Array.from(atob(compact), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

function utf8(bytes) {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function seconds(from, to) {
  if (!from || !to) return null;
  return (new Date(to) - new Date(from)) / 1000;
}

function storagePaths(items) {
  return (items || []).length ? (items || []).map((io) => `${io.storage_provider}: ${io.path}`).join("; ") : "–";
}

/** The bridges whose events become this service's jobs, each linked with its state. */
function bridgeList(bridges) {
  return h(
    "ul",
    { class: "plain fed-by" },
    bridges.map((bridge) =>
      h(
        "li",
        { dataset: { bridge: bridge.name } },
        h("a", { href: `#/bridges/${encodeURIComponent(bridge.name)}` }, bridge.name),
        ` (${bridge.type}) `,
        stateBadge(bridge.status?.state),
      ),
    ),
  );
}

function overview(service, bridges) {
  const tokenValue = h("input", { type: "text", readonly: true, class: "mono", value: "", "aria-label": "Service token" });
  const tokenRow = h("div", { class: "token-row", hidden: true }, tokenValue, h("button", { type: "button", class: "small", onclick: async () => {
    await copyText(service.token);
    notify("Token copied.", "success");
  } }, "Copy token"));
  const reveal = h("button", { type: "button", class: "small", "aria-expanded": "false" }, "Show token");
  reveal.addEventListener("click", () => {
    const show = tokenRow.hidden;
    tokenRow.hidden = !show;
    tokenValue.value = show ? service.token : "";
    reveal.textContent = show ? "Hide token" : "Show token";
    reveal.setAttribute("aria-expanded", String(show));
  });
  const props = [
    ["Image", h("span", { class: "mono" }, service.image)],
    ["Backend", badge(backendOf(service))],
    ["CPU", service.cpu],
    ["Memory", service.memory],
    ["Log level", service.log_level],
    ["Inputs", storagePaths(service.input)],
    ["Outputs", storagePaths(service.output)],
    ["Owner", service.owner || "–"],
    bridges.length && ["Bridges", bridgeList(bridges)],
    ["Token", h("div", {}, reveal, tokenRow)],
  ].filter(Boolean);
  return h(
    "section",
    { class: "panel", "aria-labelledby": "overview-title" },
    h("h2", { id: "overview-title" }, "Overview"),
    h("dl", { class: "props" }, props.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])),
    h("details", { class: "definition" }, h("summary", {}, "Definition (YAML)"), h("pre", { class: "code" }, toYaml(editableDefinition(service)))),
  );
}

function invokePanel(ctx, service) {
  const name = `invoke-${service.name}`;
  const textChoice = h("input", { type: "radio", name, value: "text", checked: true });
  const fileChoice = h("input", { type: "radio", name, value: "file" });
  const text = h("textarea", { rows: 3, spellcheck: "false" });
  const file = h("input", { type: "file" });
  const textField = field({ label: "Input text", input: text, name: "invoke-text" });
  const fileField = field({ label: "Input file", input: file, name: "invoke-file" });
  fileField.hidden = true;
  const choose = () => {
    textField.hidden = !textChoice.checked;
    fileField.hidden = textChoice.checked;
  };
  textChoice.addEventListener("change", choose);
  fileChoice.addEventListener("change", choose);
  const run = h("button", { type: "submit", class: "primary" }, "Invoke");
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const result = h("div", { class: "invoke-result" });
  const form = h(
    "form",
    {},
    h("fieldset", { class: "choice" }, h("legend", {}, "Send"), h("label", { class: "check" }, textChoice, "Text"), h("label", { class: "check" }, fileChoice, "A file")),
    textField,
    fileField,
    h("div", { class: "actions" }, run, status),
    result,
  );
  let controller = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let bytes;
    if (textChoice.checked) bytes = new TextEncoder().encode(text.value);
    else if (file.files[0]) bytes = new Uint8Array(await file.files[0].arrayBuffer());
    else {
      status.textContent = "Choose a file to send.";
      return;
    }
    controller?.abort();
    controller = new AbortController();
    run.disabled = true;
    replace(result);
    status.textContent = "Running …";
    const started = performance.now();
    try {
      const answer = await ctx.api.run(service.name, bytesToBase64(bytes), undefined, controller.signal);
      const elapsed = (performance.now() - started) / 1000;
      const decoded = base64ToBytes(answer);
      const output = decoded || new TextEncoder().encode(answer);
      const shown = utf8(output);
      status.textContent = `Answered in ${formatDuration(elapsed)}, ${formatBytes(output.length)}.`;
      replace(
        result,
        h("h3", {}, "Result"),
        shown !== null ? h("pre", { class: "log", "data-result": "" }, shown) : h("p", {}, `A binary result of ${formatBytes(output.length)}.`),
        h(
          "button",
          { type: "button", class: "small", onclick: () => downloadBlob(new Blob([output]), `${service.name}-result${shown !== null ? ".txt" : ".bin"}`) },
          "Download result",
        ),
      );
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 401) throw error;
      status.textContent = "";
      replace(result, h("div", { class: "alert", role: "alert" }, h("p", {}, `The call failed (${error.status || "no answer"}): `), h("pre", { class: "log" }, error.detail || error.message)));
    } finally {
      run.disabled = false;
    }
  });
  ctx.onCleanup(() => controller?.abort());
  return h(
    "section",
    { class: "panel", "aria-labelledby": "invoke-title" },
    h("h2", { id: "invoke-title" }, "Invoke"),
    h("p", { class: "hint" }, "Runs the script once on this input and waits for its answer (POST /run)."),
    form,
  );
}

/** The log viewer: one job's log, refreshed while "Follow" is on and the job has not ended. */
function logViewer(ctx, service, jobsState) {
  const title = h("h2", { id: "log-title" }, "Log");
  const follow = h("input", { type: "checkbox", checked: true });
  const pre = h("pre", { class: "log", tabindex: "0", "aria-labelledby": "log-title", "data-log": "" });
  const download = h("button", { type: "button", class: "small" }, "Download log");
  const close = h("button", { type: "button", class: "small" }, "Close log");
  const panel = h(
    "section",
    { class: "panel", "aria-labelledby": "log-title", hidden: true },
    h("div", { class: "page-head" }, title, h("div", { class: "actions" }, h("label", { class: "check" }, follow, "Follow"), download, close)),
    pre,
  );
  let stop = null;
  let current = null;
  const load = async () => {
    const job = current;
    const text = await ctx.api.jobLog(service.name, job);
    if (job !== current) return;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = text || "(the log is empty)";
    if (follow.checked && atBottom) pre.scrollTop = pre.scrollHeight;
    if (ENDED.has(jobsState.jobs[job]?.status) && stop) {
      stop();
      stop = null;
    }
  };
  const start = () => {
    stop?.();
    stop = follow.checked ? poll(load, LOG_POLL_MS, (error) => (pre.textContent = error.detail || error.message)) : null;
    if (!stop) load().catch((error) => (pre.textContent = error.detail || error.message));
  };
  follow.addEventListener("change", start);
  download.addEventListener("click", () => downloadBlob(new Blob([pre.textContent]), `${service.name}-${current}.log`));
  close.addEventListener("click", () => {
    stop?.();
    panel.hidden = true;
    current = null;
  });
  ctx.onCleanup(() => stop?.());
  return {
    element: panel,
    open(job) {
      current = job;
      title.textContent = `Log of ${job}`;
      pre.textContent = "Loading …";
      panel.hidden = false;
      start();
      panel.scrollIntoView({ block: "nearest" });
      pre.focus({ preventScroll: true });
    },
    closeIf(job) {
      if (current === job) close.click();
    },
  };
}

function jobsPanel(ctx, service) {
  const state = { jobs: {} };
  const viewer = logViewer(ctx, service, state);
  const body = h("tbody");
  const summary = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const refresh = async () => {
    state.jobs = await allJobs(ctx.api, service.name);
    if (!ctx.isCurrent()) return;
    renderRows();
  };
  const removeJob = async (job) => {
    if (!(await confirmDialog(`Delete job ${job}? A queued or running job is stopped.`))) return;
    await ctx.api.deleteJob(service.name, job);
    viewer.closeIf(job);
    notify(`Deleted job ${job}.`, "success");
    await refresh();
  };
  const removeMany = async (all) => {
    const question = all ? `Delete every job of ${service.name}, running ones included?` : `Delete the succeeded jobs of ${service.name}?`;
    if (!(await confirmDialog(question))) return;
    await ctx.api.deleteJobs(service.name, all);
    notify(all ? "Deleted every job." : "Deleted the succeeded jobs.", "success");
    await refresh();
  };
  const renderRows = () => {
    const entries = Object.entries(state.jobs).sort(([, a], [, b]) => String(b.creation_time).localeCompare(String(a.creation_time)));
    const counts = {};
    for (const [, job] of entries) counts[job.status] = (counts[job.status] || 0) + 1;
    summary.textContent = entries.length
      ? `${entries.length} job${entries.length === 1 ? "" : "s"}: ${Object.entries(counts).map(([status, count]) => `${count} ${status}`).join(", ")}`
      : "";
    if (!entries.length) {
      const hint = service.input?.length
        ? `Upload a file to ${storagePaths(service.input)} to start one.`
        : "This service has no input bucket: start a job with POST /job, or use Invoke.";
      replace(body, h("tr", {}, h("td", { colspan: 7, class: "empty" }, `No jobs yet. ${hint}`)));
      return;
    }
    replace(
      body,
      entries.map(([name, job]) =>
        h(
          "tr",
          { dataset: { job: name, status: job.status } },
          h("th", { scope: "row", class: "mono" }, name),
          h("td", { "data-label": "Status" }, badge(job.status), job.waiting_reason ? h("span", { class: "muted small-text" }, ` ${job.waiting_reason}`) : null),
          h("td", { "data-label": "Created" }, formatTime(job.creation_time)),
          h("td", { class: "num", "data-label": "Run time" }, formatDuration(seconds(job.start_time, job.finish_time))),
          h("td", { "data-label": "Backend" }, job.backend || "–"),
          h("td", { class: "reason", "data-label": "Reason" }, job.reason || (job.exit_code !== undefined && job.exit_code !== null ? `exit ${job.exit_code}` : "")),
          h(
            "td",
            { class: "row-actions", "data-label": "Actions" },
            h("button", { type: "button", class: "small", "aria-label": `Log of ${name}`, onclick: () => viewer.open(name) }, "Log"),
            h("button", { type: "button", class: "small", "aria-label": `Delete ${name}`, onclick: () => removeJob(name) }, "Delete"),
          ),
        ),
      ),
    );
  };
  const stop = poll(refresh, JOB_POLL_MS, (error) => {
    if (error.status === 401) throw error;
    summary.textContent = `Cannot read the jobs: ${error.detail || error.message}`;
  });
  ctx.onCleanup(stop);
  return h(
    "div",
    {},
    h(
      "section",
      { class: "panel", "aria-labelledby": "jobs-title" },
      h(
        "div",
        { class: "page-head" },
        h("h2", { id: "jobs-title" }, "Jobs"),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "small", onclick: refresh }, "Refresh"),
          h("button", { type: "button", class: "small", onclick: () => removeMany(false) }, "Delete succeeded"),
          h("button", { type: "button", class: "small danger", onclick: () => removeMany(true) }, "Delete all"),
        ),
      ),
      summary,
      dataTable({
        caption: `Jobs of ${service.name}, updated every ${JOB_POLL_MS / 1000} seconds`,
        columns: ["Job", "Status", "Created", "Run time", "Backend", "Reason", "Actions"],
        body,
        name: "jobs",
        className: "stack",
      }),
    ),
    viewer.element,
  );
}

/** The bridges that feed `name` (none when they cannot be read: they are an extra here). */
async function bridgesOf(api, name) {
  try {
    return (await api.bridges()).filter((bridge) => bridge.service === name).sort((a, b) => a.name.localeCompare(b.name));
  } catch (error) {
    if (error.status === 401) throw error;
    return [];
  }
}

export default async function render(ctx) {
  const [service, bridges] = await Promise.all([ctx.api.service(ctx.params.name), bridgesOf(ctx.api, ctx.params.name)]);
  if (!ctx.isCurrent()) return;
  ctx.setTitle(service.name);
  const encoded = encodeURIComponent(service.name);
  const removeService = async () => {
    if (!(await confirmDialog(`Delete the service ${service.name}? Its jobs are stopped and deleted, and the buckets created for it are removed with their files.`))) return;
    await ctx.api.deleteService(service.name);
    notify(`Deleted ${service.name}.`, "success");
    ctx.navigate("/services");
  };
  replace(
    ctx.root,
    h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumbs" }, h("a", { href: "#/services" }, "Services"), "/", h("span", { "aria-current": "page" }, service.name)),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, service.name),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: `#/services/${encoded}/edit` }, "Edit"),
        h(
          "button",
          { type: "button", onclick: () => downloadBlob(new Blob([toFdl(editableDefinition(service))], { type: "application/yaml" }), `${service.name}.yaml`) },
          "Download FDL",
        ),
        h("button", { type: "button", class: "danger", onclick: removeService }, "Delete service"),
      ),
    ),
    h("div", { class: "service-grid" }, overview(service, bridges), invokePanel(ctx, service)),
    jobsPanel(ctx, service),
  );
}
