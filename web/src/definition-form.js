// One definition edited two ways, as a form or as YAML (two tabs; switching carries the changes
// over), with the API's `400` field errors shown under the form field they name or on the YAML
// line of that field. The service and bridge editors are built on it.
import { ApiError } from "./api.js";
import { yamlEditor } from "./editor.js";
import { lineOfField, toYaml } from "./fdl.js";
import { h, replace, setFieldError } from "./dom.js";

/**
 * `formContent`: the form tab's children, whose fields are wrapped by field() under the API path
 * they edit. `readForm(base)` answers the form's values over `base` (so fields the form does not
 * show are kept) and throws an Error with `field` for a value it cannot read; `fillForm(def)`
 * shows a definition; `readYaml(text)` answers the YAML's definition or throws with `line`.
 * `refused` is the sentence over the list of field errors.
 *
 * Answers {tablist, formProblem, formPanel, yamlPanel, editor, mode(), showMode(mode), load(def),
 * read(), showProblem(error), clearProblems()}.
 */
export function definitionForm({ definition, formContent, yamlLabel, yamlHint, readForm, fillForm, readYaml, refused }) {
  let current = definition;
  let mode = "form";
  const yamlProblem = h("div", { class: "alert", role: "alert", hidden: true, id: "yaml-problem" });
  const formProblem = h("div", { class: "alert", role: "alert", hidden: true, tabindex: "-1" });
  const editorHost = h("div", { class: "editor" });
  const editor = yamlEditor(editorHost, { label: yamlLabel, text: toYaml(current), describedBy: "yaml-problem yaml-hint" });
  const formPanel = h("div", { role: "tabpanel", id: "panel-form", "aria-labelledby": "tab-form" }, formContent);
  const yamlPanel = h(
    "div",
    { role: "tabpanel", id: "panel-yaml", "aria-labelledby": "tab-yaml", hidden: true },
    h("p", { class: "hint", id: "yaml-hint" }, yamlHint, " Press Esc then Tab to leave the editor."),
    editorHost,
    yamlProblem,
  );
  const tabs = {
    form: h("button", { type: "button", role: "tab", id: "tab-form", "aria-controls": "panel-form", "aria-selected": "true" }, "Form"),
    yaml: h("button", { type: "button", role: "tab", id: "tab-yaml", "aria-controls": "panel-yaml", "aria-selected": "false", tabindex: "-1" }, "YAML"),
  };
  const tablist = h("div", { role: "tablist", "aria-label": "Edit as" }, tabs.form, tabs.yaml);

  const showMode = (next) => {
    mode = next;
    formPanel.hidden = next !== "form";
    yamlPanel.hidden = next !== "yaml";
    for (const [key, tab] of Object.entries(tabs)) {
      tab.setAttribute("aria-selected", String(key === next));
      tab.tabIndex = key === next ? 0 : -1;
    }
  };
  const read = () => (mode === "form" ? readForm(current) : readYaml(editor.text()));
  const load = (next) => {
    current = next;
    editor.setText(toYaml(current));
    fillForm(current);
  };
  const switchTo = (next) => {
    if (next === mode) return;
    try {
      current = read();
    } catch (error) {
      showProblem(error);
      return;
    }
    clearProblems();
    if (next === "yaml") editor.setText(toYaml(current));
    else fillForm(current);
    showMode(next);
  };
  for (const [key, tab] of Object.entries(tabs)) {
    tab.addEventListener("click", () => switchTo(key));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      switchTo(key === "form" ? "yaml" : "form");
      tabs[mode].focus();
    });
  }

  const allWrappers = () => [...formPanel.querySelectorAll(".field[data-field]")];
  const clearProblems = () => {
    for (const wrapper of allWrappers()) setFieldError(wrapper, null);
    formProblem.hidden = true;
    yamlProblem.hidden = true;
    editor.showErrors([]);
  };
  // A field path's wrapper in the form: the path itself, else its closest named parent.
  const wrapperFor = (path) => {
    const byName = new Map(allWrappers().filter((wrapper) => !wrapper.closest("[hidden]")).map((wrapper) => [wrapper.dataset.field, wrapper]));
    let candidate = path;
    while (candidate) {
      if (byName.has(candidate)) return byName.get(candidate);
      const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
      candidate = cut > 0 ? candidate.slice(0, cut) : "";
    }
    return null;
  };
  function showProblem(error) {
    clearProblems();
    const fieldErrors = error instanceof ApiError && error.errors?.length ? error.errors : null;
    if (mode === "yaml") {
      const text = editor.text();
      const located = fieldErrors
        ? fieldErrors.map((item) => ({ line: lineOfField(text, item.field) || 1, message: `${item.field}: ${item.message}` }))
        : [{ line: error.line || null, message: error.detail || error.message }];
      editor.showErrors(located);
      replace(
        yamlProblem,
        fieldErrors ? h("p", {}, "The definition is not valid:") : null,
        fieldErrors
          ? h("ul", {}, located.map((item) => h("li", {}, item.line ? `line ${item.line}: ${item.message}` : item.message)))
          : h("p", {}, error.detail || error.message),
      );
      yamlProblem.hidden = false;
      return;
    }
    const unplaced = [];
    for (const item of fieldErrors || (error.field ? [{ field: error.field, message: error.message }] : [])) {
      const wrapper = wrapperFor(item.field);
      if (wrapper) {
        const shown = wrapper.dataset.field === item.field ? item.message : `${item.field}: ${item.message}`;
        const existing = wrapper.querySelector(".field-error").textContent;
        setFieldError(wrapper, existing ? `${existing} ${shown}` : shown);
      } else unplaced.push(`${item.field}: ${item.message}`);
    }
    if (!fieldErrors && !error.field) unplaced.push(error.detail || error.message);
    replace(formProblem, h("p", {}, fieldErrors ? refused : ""), unplaced.length ? h("ul", {}, unplaced.map((text) => h("li", {}, text))) : null);
    formProblem.hidden = false;
    const first = formPanel.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea");
    (first || formProblem).focus();
  }

  return { tablist, formProblem, formPanel, yamlPanel, editor, mode: () => mode, showMode, load, read, showProblem, clearProblems };
}
