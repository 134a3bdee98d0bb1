// Small DOM helpers shared by every page: element building, notices, dialogs, formatting.
// Text always goes in as text nodes: nothing the server or a user wrote is parsed as HTML.

/**
 * h("button", {class: "primary", onclick: f, "aria-label": "Close"}, "×") → the element.
 * Props: `class`, `style` (object), `dataset`, `on<event>` handlers, boolean attributes
 * (true/false), `value`/`checked` set as properties; children may be strings, nodes, arrays,
 * null or false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "style" && typeof value === "object") Object.assign(element.style, value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "value" || key === "checked" || key === "indeterminate") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace every child of `parent` with `children`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
  return parent;
}

let uniqueCounter = 0;
/** An id unique in the page, for label/aria wiring. */
export function uid(prefix = "id") {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/** A labelled form field: {label, input, hint, error} → wrapper; `input` gets id/aria wiring. */
export function field({ label, input, hint, name }) {
  const id = input.id || uid("field");
  input.id = id;
  if (name) input.name = name;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h(
    "div",
    { class: "field", dataset: name ? { field: name } : {} },
    h("label", { for: id }, label),
    input,
    hint && h("p", { class: "hint", id: hintId }, hint),
    h("p", { class: "field-error", id: errorId, role: "alert", hidden: true }),
  );
}

/** Show `message` under the field wrapper (`null` clears it) and mark its input invalid. */
export function setFieldError(wrapper, message) {
  const error = wrapper.querySelector(".field-error");
  const input = wrapper.querySelector("input, select, textarea");
  error.textContent = message || "";
  error.hidden = !message;
  if (input) input.toggleAttribute("aria-invalid", Boolean(message));
  wrapper.classList.toggle("invalid", Boolean(message));
}

/** A notice in the page's live region: kind "info", "success" or "error". */
export function notify(message, kind = "info", timeoutMs = kind === "error" ? 10000 : 5000) {
  let region = document.getElementById("notices");
  if (!region) {
    region = h("div", { id: "notices", class: "notices", "aria-live": "polite", role: "status" });
    document.body.append(region);
  }
  const close = h("button", { class: "icon", type: "button", "aria-label": "Dismiss" }, "×");
  const notice = h("div", { class: `notice ${kind}` }, h("span", {}, message), close);
  close.addEventListener("click", () => notice.remove());
  region.append(notice);
  if (timeoutMs) setTimeout(() => notice.remove(), timeoutMs);
  return notice;
}

/** A modal confirmation (native <dialog>: focus trapped, Escape cancels); resolves true/false. */
export function confirmDialog(question, { confirm = "Delete", danger = true } = {}) {
  return new Promise((resolve) => {
    const ok = h("button", { type: "button", class: danger ? "danger" : "primary" }, confirm);
    const cancel = h("button", { type: "button" }, "Cancel");
    const titleId = uid("dialog");
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h("p", { id: titleId }, question),
      h("div", { class: "actions" }, cancel, ok),
    );
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    ok.addEventListener("click", () => finish(true));
    cancel.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** A status pill for job and service states (text, not colour alone, carries the meaning). */
export function badge(text, kind = String(text).toLowerCase()) {
  return h("span", { class: `badge badge-${kind.replace(/[^a-z0-9-]/g, "")}` }, text);
}

/**
 * A table in its horizontally scrolling wrapper, with a hidden caption: `columns` are labels or
 * [label, class] pairs, `body` the <tbody>; `name` becomes data-table. `focusable` makes the
 * wrapper a labelled region in the tab order, so a table with no control inside can still be
 * scrolled from the keyboard (it also carries data-focus=name).
 */
export function dataTable({ caption, columns, body, name, className, focusable = false }) {
  const wrapper = focusable
    ? { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption, dataset: { focus: name } }
    : { class: "table-wrap" };
  const heads = columns.map((column) => (Array.isArray(column) ? column : [column]));
  return h(
    "div",
    wrapper,
    h(
      "table",
      { "data-table": name, class: className },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, heads.map(([label, kind]) => h("th", { scope: "col", class: kind }, label)))),
      body,
    ),
  );
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes) {
  if (bytes === undefined || bytes === null || Number.isNaN(Number(bytes))) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(value < 10 ? 1 : 0) : value} ${units[unit]}`;
}

/** An ISO time as the reader's local date and time; "–" when absent. */
export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** Seconds as "850 ms", "12.3 s", "4 min 5 s". */
export function formatDuration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** Seconds since something happened as "just now", "12 s ago", "4 min ago", "3 h ago", "2 d ago". */
export function formatAge(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(Number(seconds))) return "never";
  const value = Math.max(0, Number(seconds));
  if (value < 1) return "just now";
  if (value < 60) return `${Math.floor(value)} s ago`;
  if (value < 3600) return `${Math.floor(value / 60)} min ago`;
  if (value < 86400) return `${Math.floor(value / 3600)} h ago`;
  return `${Math.floor(value / 86400)} d ago`;
}

/** Save `blob` as a file named `name` (an object URL on a temporary link). */
export function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** Copy text to the clipboard, with a fallback for pages that are not a secure context. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h("textarea", { readonly: true, class: "offscreen" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

/**
 * Call `task` now (or, with `wait`, after one interval: the page loaded its data already) and
 * every `intervalMs` until `stop()` is called or the page is left; four times slower while the
 * tab is hidden. A slow answer never overlaps the next call. Errors go to `onError` and polling
 * goes on.
 */
export function poll(task, intervalMs, onError, { wait = false } = {}) {
  let stopped = false;
  let timer = null;
  const next = () => {
    if (!stopped) timer = setTimeout(round, document.hidden ? intervalMs * 4 : intervalMs);
  };
  const round = async () => {
    if (stopped) return;
    try {
      await task();
    } catch (error) {
      onError?.(error);
    }
    next();
  };
  if (wait) next();
  else round();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Re-render `container` with `render()` and give focus back to the element (by data-focus) that
 * had it, so a refresh every few seconds never takes the keyboard's place away.
 */
export function keepFocus(container, render) {
  const key = document.activeElement?.closest?.("[data-focus]")?.dataset.focus;
  const inside = key && container.contains(document.activeElement);
  render();
  if (inside) container.querySelector(`[data-focus="${CSS.escape(key)}"]`)?.focus({ preventScroll: true });
}

/** A "Loading …" placeholder for the page body. */
export function loading(what = "Loading") {
  return h("p", { class: "loading", role: "status" }, `${what} …`);
}

/** A page's error: its sentence, and a button to try again. */
export function errorPanel(error, retry) {
  return h(
    "div",
    { class: "panel error-panel", role: "alert" },
    h("p", {}, error.detail || error.message || String(error)),
    retry && h("button", { type: "button", onclick: retry }, "Try again"),
  );
}
