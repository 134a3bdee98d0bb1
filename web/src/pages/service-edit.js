// Create or edit a service, by form or as FDL YAML (both edit one definition; switching tabs
// carries the changes over). An FDL file can be imported with its script. The API's `400` field
// paths are shown at the form field, or on the YAML line, that they name.
import { definitionForm } from "../definition-form.js";
import { editableDefinition, inlineScript, parseFdl } from "../fdl.js";
import { field, h, notify, replace, setFieldError } from "../dom.js";

const LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const ROUTINGS = [
  ["cloud", "Cloud (the cluster's executor)"],
  ["hpc", "HPC (Slurm, or an interLink virtual node)"],
  ["auto", "Automatic"],
];
const TEMPLATE = {
  name: "",
  image: "",
  cpu: "0.5",
  memory: "256Mi",
  log_level: "INFO",
  script: "#!/bin/sh\n# $INPUT_FILE_PATH is the uploaded file; write results into $TMP_OUTPUT_DIR\n",
  input: [],
  output: [],
};

const list = (text) => text.split(",").map((part) => part.trim()).filter(Boolean);

/** The inputs and outputs editor: one row per bucket path, each field named by its API path. */
function storageRows(kind, items) {
  const container = h("div", { class: "io-rows" });
  const rows = [];
  const render = () => {
    replace(
      container,
      rows.map((row, index) => {
        row.wrappers = {};
        const make = (key, label, value, hint) => {
          const input = h("input", { type: "text", value, autocomplete: "off" });
          input.addEventListener("input", () => {
            row.values[key] = input.value;
          });
          const wrapper = field({ label, input, hint, name: `${kind}[${index}].${key}` });
          row.wrappers[key] = wrapper;
          return wrapper;
        };
        return h(
          "fieldset",
          { class: "io-row" },
          h("legend", {}, `${kind === "input" ? "Input" : "Output"} ${index + 1}`),
          h(
            "div",
            { class: "form-grid" },
            make("storage_provider", "Storage provider", row.values.storage_provider, "minio.default is this cluster's store"),
            make("path", "Bucket path", row.values.path, "bucket/folder"),
            make("suffix", "Suffixes", row.values.suffix, "Comma-separated, e.g. .jpg, .png"),
            make("prefix", "Prefixes", row.values.prefix, "Comma-separated"),
          ),
          h(
            "button",
            {
              type: "button",
              class: "small",
              onclick: () => {
                rows.splice(index, 1);
                render();
              },
            },
            `Remove ${kind} ${index + 1}`,
          ),
        );
      }),
      h(
        "button",
        {
          type: "button",
          class: "small",
          onclick: () => {
            rows.push({ values: { storage_provider: "minio.default", path: "", suffix: "", prefix: "" }, rest: {} });
            render();
            rows.at(-1).wrappers.path.querySelector("input").focus();
          },
        },
        kind === "input" ? "Add input" : "Add output",
      ),
    );
  };
  const load = (values) => {
    rows.splice(0);
    for (const item of values || []) {
      const { storage_provider = "", path = "", suffix = [], prefix = [], ...rest } = item || {};
      rows.push({
        values: { storage_provider, path, suffix: (suffix || []).join(", "), prefix: (prefix || []).join(", ") },
        rest,
      });
    }
    render();
  };
  load(items);
  return {
    element: container,
    load,
    value: () =>
      rows.map((row) => {
        const item = { ...row.rest, storage_provider: row.values.storage_provider.trim(), path: row.values.path.trim() };
        if (list(row.values.suffix).length) item.suffix = list(row.values.suffix);
        if (list(row.values.prefix).length) item.prefix = list(row.values.prefix);
        return item;
      }),
    wrapper: (index, key) => rows[index]?.wrappers[key],
  };
}

function variablesText(variables) {
  return Object.entries(variables || {})
    .map(([key, value]) => `${key}=${value}`)
    .join("\n");
}

function parseVariables(text) {
  const variables = {};
  const problems = [];
  text.split("\n").forEach((line, index) => {
    if (!line.trim()) return;
    const at = line.indexOf("=");
    if (at <= 0) problems.push(`line ${index + 1} is not NAME=value`);
    else variables[line.slice(0, at).trim()] = line.slice(at + 1);
  });
  return { variables, problem: problems.join("; ") };
}

export default async function render(ctx) {
  const editing = Boolean(ctx.params.name);
  ctx.setTitle(editing ? `Edit ${ctx.params.name}` : "Create service");
  const definition = editing ? editableDefinition(await ctx.api.service(ctx.params.name)) : structuredClone(TEMPLATE);
  if (!ctx.isCurrent()) return;

  // The form's controls, each wrapped by field() under the API path it edits.
  const inputs = {
    name: h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false", disabled: editing }),
    image: h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false" }),
    cpu: h("input", { type: "text", autocomplete: "off" }),
    memory: h("input", { type: "text", autocomplete: "off" }),
    log_level: h("select", {}, LOG_LEVELS.map((level) => h("option", { value: level }, level))),
    routing: h("select", {}, ROUTINGS.map(([value, label]) => h("option", { value }, label))),
    script: h("textarea", { rows: 10, spellcheck: "false", class: "script" }),
    "environment.variables": h("textarea", { rows: 3, spellcheck: "false" }),
  };
  const wrappers = {
    name: field({ label: "Name", input: inputs.name, name: "name", hint: "Lower-case letters, digits and '-'; 1-39 characters." }),
    image: field({ label: "Image", input: inputs.image, name: "image", hint: "e.g. ghcr.io/grycap/cowsay" }),
    cpu: field({ label: "CPU", input: inputs.cpu, name: "cpu", hint: "Cores, e.g. 0.5" }),
    memory: field({ label: "Memory", input: inputs.memory, name: "memory", hint: "e.g. 256Mi, 1Gi" }),
    log_level: field({ label: "Log level", input: inputs.log_level, name: "log_level" }),
    routing: field({ label: "Backend", input: inputs.routing, name: "routing" }),
    script: field({ label: "Script", input: inputs.script, name: "script", hint: "Runs for every event; $INPUT_FILE_PATH and $TMP_OUTPUT_DIR are set." }),
    "environment.variables": field({
      label: "Environment variables",
      input: inputs["environment.variables"],
      name: "environment.variables",
      hint: "One NAME=value per line.",
    }),
  };
  const inputRows = storageRows("input", definition.input);
  const outputRows = storageRows("output", definition.output);

  const fillForm = (shown) => {
    for (const key of ["name", "image", "cpu", "memory", "script"]) inputs[key].value = shown[key] ?? "";
    inputs.log_level.value = LOG_LEVELS.includes(shown.log_level) ? shown.log_level : "INFO";
    inputs.routing.value = shown.routing || "cloud";
    inputs["environment.variables"].value = variablesText(shown.environment?.variables);
    inputRows.load(shown.input);
    outputRows.load(shown.output);
  };
  // The form's values over the definition, so fields the form does not show are kept.
  const readForm = (base) => {
    const next = structuredClone(base);
    for (const key of ["name", "image", "cpu", "memory", "script", "log_level", "routing"]) next[key] = inputs[key].value;
    next.name = next.name.trim();
    next.image = next.image.trim();
    const { variables, problem } = parseVariables(inputs["environment.variables"].value);
    if (problem) throw Object.assign(new Error(problem), { field: "environment.variables" });
    next.environment = { ...(next.environment || {}), variables };
    next.input = inputRows.value();
    next.output = outputRows.value();
    return next;
  };

  const readYaml = (text) => {
    const parsed = parseFdl(text);
    if (parsed.problem) throw Object.assign(new Error(parsed.problem), { line: parsed.line });
    if (parsed.services.length > 1) notify(`The file defines ${parsed.services.length} services; this page edits the first.`);
    return parsed.services[0].definition;
  };

  const importInput = h("input", { type: "file", multiple: true, accept: ".yaml,.yml,.sh,.py,.txt,text/*" });
  const importField = field({
    label: "Import an FDL file",
    input: importInput,
    name: "import",
    hint: "Choose the FDL file and, when its script is a file name, that script too.",
  });

  // Tabs: one definition, shown as a form or as YAML.
  const editor = definitionForm({
    definition,
    formContent: [
      h("div", { class: "form-grid" }, wrappers.name, wrappers.image, wrappers.cpu, wrappers.memory, wrappers.log_level, wrappers.routing),
      wrappers.script,
      h("h2", {}, "Inputs"),
      h("p", { class: "hint" }, "Files uploaded under these bucket paths start a job."),
      inputRows.element,
      h("h2", {}, "Outputs"),
      h("p", { class: "hint" }, "Files the script writes are uploaded here."),
      outputRows.element,
      h("h2", {}, "Environment"),
      wrappers["environment.variables"],
    ],
    yamlLabel: "Service definition (FDL YAML)",
    yamlHint: "A service definition, or an FDL file (functions: oscar: …).",
    readForm,
    fillForm,
    readYaml,
    refused: "The service was not saved: fix the fields marked below.",
  });

  importInput.addEventListener("change", async () => {
    const files = [...importInput.files];
    const fdlFile = files.find((file) => /\.ya?ml$/i.test(file.name)) || files[0];
    if (!fdlFile) return;
    const parsed = parseFdl(await fdlFile.text());
    if (parsed.problem) {
      setFieldError(importField, `${fdlFile.name}: ${parsed.problem}`);
      return;
    }
    setFieldError(importField, null);
    const imported = parsed.services[0].definition;
    const missing = await inlineScript(imported, files.filter((file) => file !== fdlFile));
    if (editing) imported.name = ctx.params.name;
    editor.load(imported);
    editor.showMode("yaml");
    if (missing) {
      setFieldError(importField, `The FDL's script is the file ${missing}: choose it together with the FDL file, or paste the script in.`);
    } else {
      notify(`Imported ${fdlFile.name}${parsed.services.length > 1 ? ` (the first of its ${parsed.services.length} services)` : ""}.`, "success");
    }
  });

  const submit = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create service");
  const form = h(
    "form",
    { class: "panel", novalidate: true },
    importField,
    editor.tablist,
    editor.formProblem,
    editor.formPanel,
    editor.yamlPanel,
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: editing ? `#/services/${encodeURIComponent(ctx.params.name)}` : "#/services" }, "Cancel")),
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
    try {
      if (editing) await ctx.api.updateService(body);
      else await ctx.api.createService(body);
      notify(editing ? `Saved ${body.name}.` : `Created ${body.name}.`, "success");
      ctx.navigate(`/services/${encodeURIComponent(body.name)}`);
    } catch (error) {
      if (error.status === 401) throw error;
      editor.showProblem(error);
    } finally {
      submit.disabled = false;
    }
  });

  fillForm(definition);
  replace(
    ctx.root,
    h(
      "nav",
      { class: "breadcrumbs", "aria-label": "Breadcrumbs" },
      h("a", { href: "#/services" }, "Services"),
      editing && ["/", h("a", { href: `#/services/${encodeURIComponent(ctx.params.name)}` }, ctx.params.name)],
    ),
    h("div", { class: "page-head" }, h("h1", {}, editing ? `Edit ${ctx.params.name}` : "Create service")),
    form,
  );
  if (ctx.query.get("mode") === "yaml") editor.showMode("yaml");
  (editing ? inputs.image : inputs.name).focus();
}
