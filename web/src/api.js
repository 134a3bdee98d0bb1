// The dashboard's only way to the server: oscar's public REST API (docs/api.md) and presigned
// S3 URLs. Every failure becomes an ApiError carrying the server's `detail` and field `errors`.

const SESSION_KEY = "oscar.session";

/** A failed call: HTTP status (0 when the server could not be reached), sentence, field errors. */
export class ApiError extends Error {
  constructor(status, detail, errors = []) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.errors = errors; // [{field: "input[0].path", message: "..."}]
  }
}

/**
 * Where the dashboard talks to and as whom; kept in sessionStorage (this tab only). A Basic
 * session has a username and password; an OIDC one (`oidc`: tokens, provider endpoints, see
 * oidc.js) has the user's display name as `username` and sends its access token.
 */
export class Session {
  constructor(endpoint, username, password, oidc = null) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.username = username;
    this.password = password;
    this.oidc = oidc;
  }

  static load() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      return saved ? new Session(saved.endpoint, saved.username, saved.password, saved.oidc) : null;
    } catch {
      return null;
    }
  }

  save() {
    const { endpoint, username, password, oidc } = this;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ endpoint, username, password, oidc }));
  }

  static clear() {
    sessionStorage.removeItem(SESSION_KEY);
  }

  get authorization() {
    if (this.oidc) return `Bearer ${this.oidc.access_token}`;
    const bytes = new TextEncoder().encode(`${this.username}:${this.password}`);
    return "Basic " + btoa(String.fromCharCode(...bytes));
  }
}

/** An OIDC session's new access token (oidc.js, loaded on first need). */
async function refresh(session) {
  const { refreshTokens } = await import("./oidc.js");
  await refreshTokens(session);
}

async function errorOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    return new ApiError(response.status, detail || response.statusText, body.errors || []);
  } catch {
    return new ApiError(response.status, text.trim() || `${response.status} ${response.statusText}`);
  }
}

/**
 * One call to the API. `json` is sent as a JSON body, `body` as it is; the answer is parsed as
 * JSON when the server says so (`as: "text"` or `"blob"` to choose), `null` for empty answers.
 */
export async function call(session, path, { method = "GET", json, body, headers = {}, as, signal, token } = {}) {
  const sent = { ...headers };
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const oidc = !token && session.oidc;
  // An OIDC access token is renewed a little before it expires, and once more on a 401.
  if (oidc && oidc.expires_at - Date.now() < 30000 && oidc.refresh_token) {
    await refresh(session).catch((error) => {
      if (oidc.expires_at <= Date.now()) throw error; // still valid: try it, renew later
    });
  }
  const send = async () => {
    sent.Authorization = token ? `Bearer ${token}` : session.authorization;
    try {
      // credentials "omit": the browser must not add (or prompt for) credentials of its own.
      return await fetch(session.endpoint + path, { method, body, headers: sent, signal, credentials: "omit" });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, `cannot reach ${session.endpoint}: ${error.message}`);
    }
  };
  const used = oidc && oidc.access_token;
  let response = await send();
  if (response.status === 401 && oidc?.refresh_token) {
    if (oidc.access_token === used) await refresh(session); // else another call renewed it
    response = await send();
  }
  if (!response.ok) throw await errorOf(response);
  if (as === "blob") return { blob: await response.blob(), response };
  if (as === "response") return response;
  const text = await response.text();
  if (as === "text") return text;
  if (!text) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? JSON.parse(text) : text;
}

const enc = encodeURIComponent;

/** The API's routes by name, bound to one session. */
export function client(session) {
  const get = (path, options) => call(session, path, options);
  return {
    session,
    info: () => get("/system/info"),
    config: () => get("/system/config"),
    status: () => get("/system/status"),
    metrics: (start, end) => get(`/system/metrics?start=${enc(start)}&end=${enc(end)}`),
    services: (include = "") => get(`/system/services${include ? `?include=${enc(include)}` : ""}`),
    service: (name) => get(`/system/services/${enc(name)}`),
    createService: (definition) => get("/system/services", { method: "POST", json: definition }),
    updateService: (definition) => get("/system/services", { method: "PUT", json: definition }),
    deleteService: (name) => get(`/system/services/${enc(name)}`, { method: "DELETE" }),
    jobs: (name, page = "") => get(`/system/logs/${enc(name)}${page ? `?page=${enc(page)}` : ""}`),
    jobLog: (name, job, tail) =>
      get(`/system/logs/${enc(name)}/${enc(job)}${tail ? `?tail=${tail}` : ""}`, { as: "text" }),
    deleteJob: (name, job) => get(`/system/logs/${enc(name)}/${enc(job)}`, { method: "DELETE" }),
    deleteJobs: (name, all) => get(`/system/logs/${enc(name)}${all ? "?all=true" : ""}`, { method: "DELETE" }),
    run: (name, body, token, signal) => get(`/run/${enc(name)}`, { method: "POST", body, token, signal, as: "text" }),
    buckets: () => get("/system/buckets"),
    bucket: (name, page = "") => get(`/system/buckets/${enc(name)}${page ? `?page=${enc(page)}` : ""}`),
    createBucket: (spec) => get("/system/buckets", { method: "POST", json: spec }),
    updateBucket: (spec) => get("/system/buckets", { method: "PUT", json: spec }),
    deleteBucket: (name) => get(`/system/buckets/${enc(name)}`, { method: "DELETE" }),
    bridges: () => get("/system/bridges"),
    bridge: (name) => get(`/system/bridges/${enc(name)}`),
    createBridge: (definition) => get("/system/bridges", { method: "POST", json: definition }),
    updateBridge: (name, definition) => get(`/system/bridges/${enc(name)}`, { method: "PUT", json: definition }),
    deleteBridge: (name) => get(`/system/bridges/${enc(name)}`, { method: "DELETE" }),
    /** `operation`: "upload", "download" or "delete"; answers {method, url, headers?, expires_at}. */
    presign: (bucket, objectKey, operation, extra = {}) =>
      get(`/system/buckets/${enc(bucket)}/presign`, {
        method: "POST",
        json: { object_key: objectKey, operation, ...extra },
      }),
  };
}

/** Every job of a service, following `next_page` (the API answers a page at a time). */
export async function allJobs(api, name) {
  const jobs = {};
  let page = "";
  for (let round = 0; round < 100; round++) {
    const answer = await api.jobs(name, page);
    Object.assign(jobs, answer.jobs || {});
    if (!answer.next_page || !answer.remaining_jobs) break;
    page = answer.next_page;
  }
  return jobs;
}

/**
 * Send `file` to a presigned URL with XMLHttpRequest, which (unlike fetch) reports upload
 * progress: `onProgress(sentBytes, totalBytes)`. Resolves when the store has answered 2xx.
 */
export function sendToPresigned(signed, file, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(signed.method, signed.url);
    for (const [name, value] of Object.entries(signed.headers || {})) request.setRequestHeader(name, value);
    request.upload.onprogress = (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : file.size);
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve(request);
      else {
        const code = /<Code>([^<]+)<\/Code>/.exec(request.responseText || "");
        const message = /<Message>([^<]+)<\/Message>/.exec(request.responseText || "");
        reject(new ApiError(request.status, `the store refused the upload: ${code?.[1] || request.status} ${message?.[1] || ""}`.trim()));
      }
    };
    request.onerror = () => reject(new ApiError(0, "the object store could not be reached"));
    request.onabort = () => reject(new DOMException("upload cancelled", "AbortError"));
    signal?.addEventListener("abort", () => request.abort());
    request.send(file);
  });
}
