// FDL in the browser: reading an FDL file (upstream's `functions: oscar: [{cluster: service}]`
// wrapper, or a bare service), writing one for download, trimming what the API reads back to
// what a person wrote, and finding the YAML line of an API error's field path.
import { dump, load } from "js-yaml";

/** A service definition → YAML text (keys in the order given, long lines kept whole). */
export function toYaml(definition) {
  return dump(definition, { lineWidth: -1, noRefs: true, quotingType: '"' });
}

/**
 * YAML text that must hold one mapping (of `what`'s fields): {document} or {problem, line}, the
 * line (1-based) when the YAML itself is broken.
 */
export function loadMapping(text, what) {
  let document;
  try {
    document = load(text);
  } catch (error) {
    const line = error.mark ? error.mark.line + 1 : null;
    return { problem: `not valid YAML${line ? ` (line ${line})` : ""}: ${error.reason || error.message}`, line };
  }
  if (!document || typeof document !== "object" || Array.isArray(document)) {
    return { problem: `the YAML is not a mapping of ${what} fields`, line: null };
  }
  return { document, problem: null, line: null };
}

/**
 * Parse FDL or service YAML text. Answers {services: [{cluster, definition}], problem}: one entry
 * per service of an FDL file (top-level `storage_providers` merged into each), or the bare
 * definition itself with cluster "".
 */
export function parseFdl(text) {
  const { document, problem, line } = loadMapping(text, "service");
  if (problem) return { services: [], problem, line };
  const wrapped = document.functions?.oscar;
  if (!wrapped) return { services: [{ cluster: "", definition: document }], problem: null };
  if (!Array.isArray(wrapped)) return { services: [], problem: "functions.oscar must be a list of {cluster: service}" };
  const services = [];
  for (const entry of wrapped) {
    for (const [cluster, definition] of Object.entries(entry || {})) {
      if (!definition || typeof definition !== "object") continue;
      const merged = { ...definition };
      if (document.storage_providers) {
        merged.storage_providers = { ...document.storage_providers, ...(definition.storage_providers || {}) };
      }
      services.push({ cluster, definition: merged });
    }
  }
  return services.length ? { services, problem: null } : { services, problem: "functions.oscar lists no service" };
}

/** An FDL file holding one service, as oscar-cli applies it. */
export function toFdl(definition, cluster = "oscar") {
  return toYaml({ functions: { oscar: [{ [cluster]: definition }] } });
}

/**
 * One-line `script` values name a file next to the FDL (as oscar-cli reads them): inline the
 * file's text when it is among `files` (File objects). Answers the file name still missing.
 */
export async function inlineScript(definition, files) {
  const script = definition.script;
  if (typeof script !== "string" || script.includes("\n") || !script.trim()) return null;
  const name = script.trim().split("/").pop();
  const file = files.find((candidate) => candidate.name === name);
  if (!file) return name;
  definition.script = await file.text();
  return null;
}

const SERVER_KEYS = ["token", "owner", "deployment", "volume_status", "namespace"];

function isEmpty(value) {
  if (value === null || value === undefined || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === "object") return Object.keys(value).length === 0;
  return false;
}

function allZero(value) {
  if (value === 0 || value === false || isEmpty(value)) return true;
  if (typeof value === "object" && !Array.isArray(value)) return Object.values(value).every(allZero);
  return false;
}

function prune(value) {
  if (Array.isArray(value)) return value.map(prune);
  if (!value || typeof value !== "object") return value;
  const kept = {};
  for (const [key, inner] of Object.entries(value)) {
    const pruned = prune(inner);
    if (!isEmpty(pruned)) kept[key] = pruned;
  }
  return kept;
}

/**
 * A service as the API reads it back, without what the server sets or fills with zeros, so the
 * editor shows what a person wrote. Secret keys are kept with their empty values: the API keeps
 * a stored secret that is sent back empty, and removes one that is left out.
 */
export function editableDefinition(service) {
  const definition = structuredClone(service);
  for (const key of SERVER_KEYS) delete definition[key];
  for (const key of ["expose", "synchronous", "mount", "federation"]) {
    if (key in definition && allZero(definition[key])) delete definition[key];
  }
  if (definition.storage_providers?.minio?.default) delete definition.storage_providers.minio.default;
  const secrets = definition.environment?.secrets;
  const trimmed = prune(definition);
  if (secrets && Object.keys(secrets).length) {
    trimmed.environment = { ...(trimmed.environment || {}), secrets };
  }
  return trimmed;
}

/**
 * The 1-based line of `path` ("input[0].path", "memory") in YAML `text`, best effort: each key is
 * the next line naming it deeper than its parent, each index counts the list's dashes. Answers
 * the deepest line found (the parent's when a key is missing), `null` when none is.
 */
export function lineOfField(text, path) {
  const lines = text.split("\n");
  const segments = [];
  for (const part of path.split(".")) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!match) break;
    if (match[1]) segments.push(match[1]);
    for (const index of match[2].matchAll(/\[(\d+)\]/g)) segments.push(Number(index[1]));
  }
  // The column where a line's content starts, past indentation and list dashes.
  const contentColumn = (line) => line.length - line.replace(/^[\s-]*/, "").length;
  let from = 0;
  let parentColumn = -1;
  let found = null;
  for (const segment of segments) {
    let hit = -1;
    if (typeof segment === "number") {
      let dashColumn = -1;
      let seen = -1;
      for (let i = from; i < lines.length && hit < 0; i++) {
        const column = lines[i].length - lines[i].trimStart().length;
        if (!lines[i].trimStart().startsWith("-")) continue;
        if (dashColumn < 0) dashColumn = column;
        if (column < dashColumn) break;
        if (column === dashColumn && ++seen === segment) hit = i;
      }
    } else {
      const escaped = segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const key = new RegExp(`^[\\s-]*["']?${escaped}["']?\\s*:`);
      for (let i = from; i < lines.length && hit < 0; i++) {
        if (key.test(lines[i]) && contentColumn(lines[i]) > parentColumn) hit = i;
      }
    }
    if (hit < 0) break;
    found = hit;
    parentColumn = typeof segment === "number" ? lines[hit].length - lines[hit].trimStart().length : contentColumn(lines[hit]);
    from = typeof segment === "number" ? hit : hit + 1;
  }
  return found === null ? null : found + 1;
}
