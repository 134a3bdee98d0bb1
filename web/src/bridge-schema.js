// What the dashboard knows of event bridges (oscar/models/bridge.py): each type's fields with
// their labels, defaults and hints, the credentials it reads, how a state is shown, and the
// definition as a person edits it. No YAML here: the bridges list loads this module too.
import { badge } from "./dom.js";

/** What the API answers in place of every stored credential; sent back, it keeps the value. */
export const MASK = "********";

const verify = { key: "verify", label: "Verify TLS certificates", kind: "bool", default: true };
const payload = {
  key: "payload",
  label: "Payload",
  kind: "choice",
  default: "s3",
  options: [
    ["s3", "S3 event notifications"],
    ["raw", "Raw: each message is one job's event"],
  ],
};

/**
 * The types, in the order offered. A field: {key, label, kind: text|number|bool|choice, default,
 * hint, required, options, decimal (a number with a fraction)}. `interval` is the type's default
 * interval, its largest value and what it means for that type.
 */
export const TYPES = {
  webdav: {
    label: "WebDAV folder",
    summary: "Lists a WebDAV folder (dCache's WebDAV door, any WebDAV server) every interval; each new file becomes a job.",
    interval: [5, 3600, "Seconds between two listings of the folder."],
    fields: [
      { key: "provider", label: "Provider", hint: "webdav.<id> of the service whose endpoint and credentials are used (default: the provider of the service's first webdav input)." },
      { key: "endpoint", label: "Endpoint", hint: "Server URL (default: the provider's hostname)." },
      { key: "folder", label: "Folder", hint: "Folder watched (default: the webdav input's path)." },
      { key: "stable_polls", label: "Stable polls", kind: "number", default: 2, hint: "Listings a file must look the same in before it is taken (1 to 10)." },
      { key: "recursive", label: "Watch subfolders", kind: "bool", default: true },
      verify,
    ],
    credentials: ["user", "password", "token"],
    credentialsHint: "A user and password, or a bearer token (a dCache macaroon, an OIDC token). Each one left unset is taken from the service's webdav provider.",
  },
  dcache: {
    label: "dCache events",
    summary: "Listens to dCache's server-sent events (/api/v1/events, an inotify subscription); each closed file becomes a job.",
    interval: [5, 3600, "Longest wait for events in one round, in seconds."],
    fields: [
      { key: "endpoint", label: "Endpoint", required: true, hint: "dCache's frontend API, e.g. https://dcache:3880/api/v1." },
      { key: "folder", label: "Folder", hint: "Namespace path watched (default: '/' + the service's webdav input path)." },
      verify,
    ],
    credentials: ["user", "password", "token"],
    credentialsHint: "A user and password, or a bearer token (a dCache macaroon, an OIDC token).",
  },
  sqs: {
    label: "SQS queue",
    summary: "Long-polls an SQS queue of S3 event notifications (or of raw messages); each message becomes a job.",
    interval: [10, 20, "Longest wait of one long poll, in seconds (SQS allows 20)."],
    fields: [
      { key: "queue", label: "Queue", required: true, hint: "Queue name or URL." },
      { key: "endpoint", label: "Endpoint", hint: "SQS endpoint URL (default: AWS in the region)." },
      { key: "region", label: "Region", default: "us-east-1" },
      payload,
      { key: "visibility_timeout", label: "Visibility timeout", kind: "number", default: 60, hint: "Seconds a received message stays hidden from other readers (1 to 43200)." },
    ],
    credentials: ["access_key", "secret_key"],
    credentialsHint: "Left unset, the server's own AWS credentials are used (its environment or profile).",
  },
  kafka: {
    label: "Kafka topic",
    summary: "Consumes a Kafka topic of S3 or MinIO event records (or of raw messages); each record becomes a job.",
    interval: [1, 60, "Longest wait of one poll, in seconds."],
    fields: [
      { key: "bootstrap_servers", label: "Bootstrap servers", required: true, hint: "host:port[,host:port …]" },
      { key: "topic", label: "Topic", required: true },
      { key: "group_id", label: "Consumer group", hint: "Default: oscar-<bridge name>." },
      payload,
      {
        key: "security_protocol",
        label: "Security protocol",
        kind: "choice",
        default: "PLAINTEXT",
        options: ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].map((value) => [value, value]),
      },
      {
        key: "sasl_mechanism",
        label: "SASL mechanism",
        kind: "choice",
        default: "PLAIN",
        options: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].map((value) => [value, value]),
      },
      { key: "ssl_cafile", label: "CA file", hint: "PEM file of the CAs trusted (a path on the server)." },
      verify,
    ],
    credentials: ["sasl_username", "sasl_password"],
    credentialsHint: "Used with the SASL security protocols.",
  },
  minio: {
    label: "MinIO bucket",
    summary: "Listens to a MinIO bucket's notifications where MinIO cannot reach this server; each new object becomes a job.",
    interval: [5, 3600, "Longest wait for events in one round, in seconds."],
    fields: [
      { key: "provider", label: "Provider", hint: "minio.<id> of the service (default: the provider of its first minio input); the bucket and prefix come from that input." },
      { key: "endpoint", label: "Endpoint", hint: "MinIO URL (default: the provider's endpoint)." },
      {
        key: "reconcile",
        label: "Reconcile (seconds)",
        kind: "number",
        decimal: true,
        default: 60,
        hint: "Seconds between listings of the input folder, which take what the listening stream did not bring (MinIO keeps no backlog for listeners).",
      },
      verify,
    ],
    credentials: ["access_key", "secret_key"],
    credentialsHint: "Each one left unset is taken from the service's minio provider.",
  },
};

export const CREDENTIAL_LABELS = {
  user: "User",
  password: "Password",
  token: "Bearer token",
  access_key: "Access key",
  secret_key: "Secret key",
  sasl_username: "SASL username",
  sasl_password: "SASL password",
};

/** Keys every bridge has, whatever its type. */
export const COMMON_KEYS = ["name", "type", "service", "enabled", "interval", "max_pending", "credentials"];

/** Every key some type's form shows. */
export const KNOWN_KEYS = new Set([...COMMON_KEYS, ...Object.values(TYPES).flatMap((type) => type.fields.map((item) => item.key))]);

// States → badge colours: running green, paused yellow, error red, starting blue, others grey.
const STATE_KINDS = { running: "ok", paused: "pending", error: "error", starting: "running", disabled: "idle", stopped: "idle" };

/** A bridge state as a badge (the word carries the meaning, the colour repeats it). */
export function stateBadge(state) {
  const text = state || "unknown";
  return badge(text, STATE_KINDS[text] || "idle");
}

/** The label of a type ("webdav" → "WebDAV folder"); unknown ones as they are. */
export const typeLabel = (type) => TYPES[type]?.label || type;

/** Which credentials a bridge has stored, as "user, password" ("" when none). */
export const storedCredentials = (bridge) => Object.keys(bridge.credentials || {}).sort().join(", ");

/**
 * A bridge as the API answers it, as a person edits it: without its status and without the
 * fields left empty. Stored credentials stay masked: sent back so, they are kept.
 */
export function editableBridge(bridge) {
  const definition = {};
  for (const [key, value] of Object.entries(bridge)) {
    if (key === "status" || value === null || value === "") continue;
    if (key === "credentials" && !Object.keys(value || {}).length) continue;
    definition[key] = value;
  }
  return definition;
}
