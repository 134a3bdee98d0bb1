// Create or edit a bridge, by form or as YAML. The form shows the fields of the chosen type
// (values typed for one type are kept when another is tried). Credentials are write-only: the
// inputs are password fields, and on edit an empty one keeps what is stored (the API's mask is
// sent back) unless "Forget" is ticked. The API's `400` field errors are shown at their field.
import { COMMON_KEYS, CREDENTIAL_LABELS, KNOWN_KEYS, MASK, TYPES, editableBridge } from "../bridge-schema.js";
import { definitionForm } from "../definition-form.js";
import { field, h, notify, replace, uid } from "../dom.js";
import { loadMapping } from "../fdl.js";

const enc = encodeURIComponent;

/** A number as typed: a number when it reads as one, the text otherwise (the API names the problem). */
function numberOf(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : trimmed;
}

/** A checkbox in a field wrapper (its label beside it), wired like field() for hints and errors. */
function checkField({ label, input, name, hint, className }) {
  input.id = input.id || uid("field");
  const hintId = hint ? `${input.id}-hint` : null;
  const errorId = `${input.id}-error`;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  return h(
    "div",
    { class: className ? `field ${className}` : "field", dataset: { field: name } },
    h("label", { class: "check", for: input.id }, input, label),
    hint && h("p", { class: "hint", id: hintId }, hint),
    h("p", { class: "field-error", id: errorId, role: "alert", hidden: true }),
  );
}

const textInput = (props = {}) => h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...props });

export default async function render(ctx) {
  const editing = Boolean(ctx.params.name);
  ctx.setTitle(editing ? `Edit bridge ${ctx.params.name}` : "Create bridge");
  const [stored, services] = await Promise.all([
    editing ? ctx.api.bridge(ctx.params.name) : null,
    ctx.api.services().catch((error) => {
      if (error.status === 401) throw error;
      return [];
    }),
  ]);
  if (!ctx.isCurrent()) return;
  const definition = editing
    ? editableBridge(stored)
    : { name: "", type: "webdav", service: services.length === 1 ? services[0].name : "", enabled: true };

  // What the form holds: the values of every type's fields (kept across type switches) and, per
  // credential, what was typed, whether one is stored (masked), and whether to forget it.
  const values = {};
  const secrets = {};
  const secret = (key) => (secrets[key] ||= { typed: "", stored: false, forget: false });

  const inputs = {
    name: textInput({ required: true, disabled: editing }),
    type: h("select", {}, Object.entries(TYPES).map(([value, type]) => h("option", { value }, type.label))),
    service: h("select", { required: true }),
    interval: textInput({ inputmode: "decimal" }),
    max_pending: textInput({ inputmode: "numeric" }),
    enabled: h("input", { type: "checkbox" }),
  };
  const serviceNames = services.map((service) => service.name).sort();
  const fillServices = (chosen) => {
    const names = chosen && !serviceNames.includes(chosen) ? [chosen, ...serviceNames] : serviceNames;
    replace(
      inputs.service,
      h("option", { value: "", disabled: true }, names.length ? "Choose a service" : "No service yet: create one first"),
      names.map((value) => h("option", { value }, value)),
    );
    inputs.service.value = chosen || "";
  };
  const intervalHint = h("span");
  const wrappers = {
    name: field({ label: "Name", input: inputs.name, name: "name", hint: "Lower-case letters, digits and '-'; 1-63 characters." }),
    type: field({ label: "Type", input: inputs.type, name: "type", hint: "What the bridge watches." }),
    service: field({ label: "Service", input: inputs.service, name: "service", hint: "Every event becomes a job of this service; it needs an input the event's file can be staged from." }),
    interval: field({ label: "Interval (seconds)", input: inputs.interval, name: "interval", hint: intervalHint }),
    max_pending: field({
      label: "Max pending",
      input: inputs.max_pending,
      name: "max_pending",
      hint: "Pending jobs of the service at which the bridge pauses; empty: the server's default (OSCAR_BRIDGE_MAX_PENDING).",
    }),
    enabled: checkField({ label: "Enabled", input: inputs.enabled, name: "enabled", hint: "Off: defined, but not reading its source.", className: "check-field" }),
  };
  const typeSummary = h("p", { class: "hint type-summary" });
  const sourceFields = h("div", { class: "form-grid" });
  const credentialFields = h("div", { class: "form-grid" });
  const credentialHint = h("p", { class: "hint" });
  const credentialsError = h("p", { class: "field-error", role: "alert", hidden: true });
  const credentialSet = h(
    "fieldset",
    { class: "field credentials", dataset: { field: "credentials" } },
    h("legend", {}, "Credentials"),
    credentialHint,
    credentialsError,
    credentialFields,
  );

  const sourceField = (item) => {
    const current = values[item.key] ?? item.default;
    let input;
    if (item.kind === "bool") {
      input = h("input", { type: "checkbox", checked: current !== false });
      input.addEventListener("change", () => (values[item.key] = input.checked));
      return checkField({ label: item.label, input, name: item.key, hint: item.hint });
    }
    if (item.kind === "choice") {
      input = h("select", {}, item.options.map(([value, label]) => h("option", { value }, label)));
      input.value = current ?? item.options[0][0];
      input.addEventListener("change", () => (values[item.key] = input.value));
    } else {
      input = textInput({ value: values[item.key] ?? "", inputmode: item.kind === "number" ? (item.decimal ? "decimal" : "numeric") : undefined, required: item.required });
      if (item.default !== undefined) input.placeholder = String(item.default);
      input.addEventListener("input", () => (values[item.key] = input.value));
    }
    const hint = [item.hint, item.default !== undefined && item.kind !== "choice" ? `Default ${item.default}.` : null].filter(Boolean).join(" ");
    return field({ label: item.required ? `${item.label} (required)` : item.label, input, name: item.key, hint: hint || undefined });
  };

  const credentialField = (key) => {
    const state = secret(key);
    const label = CREDENTIAL_LABELS[key] || key;
    const input = h("input", { type: "password", autocomplete: "new-password", spellcheck: "false", value: state.typed });
    input.addEventListener("input", () => (state.typed = input.value));
    const wrapper = field({
      label,
      input,
      name: `credentials.${key}`,
      hint: state.stored ? "Set. Leave empty to keep it, or type a new one." : editing ? "Not set." : undefined,
    });
    if (state.stored) {
      const forget = h("input", { type: "checkbox", checked: state.forget });
      forget.addEventListener("change", () => {
        state.forget = forget.checked;
        input.disabled = forget.checked;
      });
      input.disabled = state.forget;
      wrapper.append(h("label", { class: "check forget" }, forget, `Forget the stored ${label.toLowerCase()}`));
    }
    return wrapper;
  };

  const showType = () => {
    const type = TYPES[inputs.type.value] || TYPES.webdav;
    const [interval, most, why] = type.interval;
    intervalHint.textContent = `${why} Default ${interval}, at most ${most}.`;
    inputs.interval.placeholder = String(interval);
    typeSummary.textContent = type.summary;
    replace(sourceFields, type.fields.map(sourceField));
    credentialHint.textContent = `${type.credentialsHint} Write-only: the server stores them and never shows them again.`;
    replace(credentialFields, type.credentials.map(credentialField));
  };
  inputs.type.addEventListener("change", showType);

  const fillForm = (shown) => {
    inputs.name.value = shown.name ?? "";
    inputs.type.value = TYPES[shown.type] ? shown.type : "webdav";
    fillServices(shown.service);
    inputs.interval.value = shown.interval ?? "";
    inputs.max_pending.value = shown.max_pending ?? "";
    inputs.enabled.checked = shown.enabled !== false;
    // The shown type's fields take the definition's values; other types' keep what was typed.
    const type = TYPES[inputs.type.value];
    for (const item of type.fields) delete values[item.key];
    for (const [key, value] of Object.entries(shown)) if (!COMMON_KEYS.includes(key)) values[key] = value;
    for (const key of type.credentials) delete secrets[key];
    for (const [key, value] of Object.entries(shown.credentials || {})) {
      if (value === MASK) secret(key).stored = true;
      else secret(key).typed = String(value ?? "");
    }
    showType();
  };

  // The form's values in the API's order; keys no form shows (a typo in the YAML) are kept, so
  // the API names them.
  const readForm = (base) => {
    const type = TYPES[inputs.type.value];
    const next = {
      name: editing ? ctx.params.name : inputs.name.value.trim(),
      type: inputs.type.value,
      service: inputs.service.value,
      enabled: inputs.enabled.checked,
    };
    const interval = numberOf(inputs.interval.value);
    if (interval !== undefined) next.interval = interval;
    const maxPending = numberOf(inputs.max_pending.value);
    if (maxPending !== undefined) next.max_pending = maxPending;
    for (const item of type.fields) {
      const value = values[item.key];
      if (item.kind === "bool") next[item.key] = value ?? item.default;
      else if (item.kind === "choice") next[item.key] = value ?? item.default;
      else if (item.kind === "number") {
        const number = numberOf(value);
        if (number !== undefined) next[item.key] = number;
      } else if (String(value ?? "").trim()) next[item.key] = String(value).trim();
    }
    const credentials = {};
    for (const key of type.credentials) {
      const state = secret(key);
      if (state.typed && !state.forget) credentials[key] = state.typed;
      else if (state.stored && !state.forget) credentials[key] = MASK;
    }
    if (Object.keys(credentials).length || editing) next.credentials = credentials;
    for (const [key, value] of Object.entries(base)) if (!KNOWN_KEYS.has(key)) next[key] = value;
    return next;
  };

  const readYaml = (text) => {
    const { document, problem, line } = loadMapping(text, "bridge");
    if (problem) throw Object.assign(new Error(problem), { line });
    return document;
  };

  const editor = definitionForm({
    definition,
    formContent: [
      h("div", { class: "form-grid" }, wrappers.name, wrappers.type, wrappers.service, wrappers.interval, wrappers.max_pending, wrappers.enabled),
      h("h2", {}, "Source"),
      typeSummary,
      sourceFields,
      credentialSet,
    ],
    yamlLabel: "Bridge definition (YAML)",
    yamlHint: `A bridge definition: name, type (${Object.keys(TYPES).join(", ")}), service, the type's fields and credentials. Stored credentials read ${MASK}: left so, they are kept.`,
    readForm,
    fillForm,
    readYaml,
    refused: "The bridge was not saved: fix the fields marked below.",
  });

  const submit = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create bridge");
  const back = editing ? `#/bridges/${enc(ctx.params.name)}` : "#/bridges";
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    editor.tablist,
    editor.formProblem,
    editor.formPanel,
    editor.yamlPanel,
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: back }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = editor.read();
    } catch (error) {
      editor.showProblem(error);
      return;
    }
    editor.clearProblems();
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const saved = editing ? await ctx.api.updateBridge(ctx.params.name, body) : await ctx.api.createBridge(body);
      notify(editing ? `Saved bridge ${saved.name}.` : `Created bridge ${saved.name}.`, "success");
      ctx.navigate(`/bridges/${enc(saved.name)}`);
    } catch (error) {
      if (error.status === 401) throw error;
      editor.showProblem(error);
    } finally {
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  });

  fillForm(definition);
  replace(
    ctx.root,
    h(
      "nav",
      { class: "breadcrumbs", "aria-label": "Breadcrumbs" },
      h("a", { href: "#/bridges" }, "Bridges"),
      editing && ["/", h("a", { href: back }, ctx.params.name)],
    ),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit bridge ${ctx.params.name}` : "Create bridge")),
    form,
  );
  if (ctx.query.get("mode") === "yaml") editor.showMode("yaml");
  (editing ? inputs.interval : inputs.name).focus();
}
