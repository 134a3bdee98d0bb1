"""Convert a DCNiOS workflow file (interTwin-eu/dcnios) into bridge definitions.

DCNiOS deploys NiFi process groups: sources (dCache, Kafka, GetSQS, GetS3, RUCIO), destinations
(OSCAR, PutS3) and `connection`s between them. Every connection from a source we have a bridge
type for to an OSCAR destination becomes one bridge definition (a dict `parse_bridge` accepts)
whose `service` is the destination's. Both layouts DCNiOS users write are read: its code's
(`nifi.Source.<kind>`, `nifi.Destination.OSCAR`) and its documentation's flat one
(`nifi.<kind>`, with the `SQS`/`S3` spellings).

Whatever a bridge does not do (NiFi itself, state files, alterations, generic process groups,
the OSCAR endpoint and token, PKCS12 truststores, the AWS queue and notification DCNiOS made)
becomes a warning naming its YAML path; a malformed file raises `DcniosError` naming every
offending path and line. Neither ever contains a credential. The conversion is pure: AWS
credentials are looked up as DCNiOS does, in the `environ` given (the caller passes the user's
environment) and in `$HOME/.aws/credentials`.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oscar.errors import FieldError, InvalidServiceError
from oscar.models.bridge import MASK, InvalidBridgeError, parse_bridge
from oscar.models.fdl import Loc, compose_with_lines, line_of, yaml_problem

# Each spelling DCNiOS (code or docs) uses for an element kind, and the kind it means.
SOURCE_KINDS = {
    "dCache": "dcache",
    "Kafka": "kafka",
    "GetSQS": "sqs",
    "SQS": "sqs",
    "GetS3": "s3",
    "S3": "s3",
    "RUCIO": "rucio",
}
DESTINATION_KINDS = {"OSCAR": "oscar", "PutS3": "puts3"}
_NIFI_ACCESS = ("endpoint", "user", "password")
# Per kind: the DCNiOS key of each bridge field, so a refused value is reported where it is
# written (`queue` comes from `queue_name`). Fields not listed are reported on the element.
_FIELD_KEYS: dict[str, dict[str, str]] = {
    "dcache": {"endpoint": "endpoint", "folder": "folder"},
    "kafka": {
        "bootstrap_servers": "bootstrap_servers",
        "topic": "topic",
        "group_id": "group_id",
        "security_protocol": "security_protocol",
        "sasl_mechanism": "sasl_mechanism",
    },
    "sqs": {"queue": "queue_name", "region": "AWS_DEFAULT_REGION", "endpoint": "endpoint"},
    "s3": {"queue": "AWS_S3_BUCKET", "region": "AWS_DEFAULT_REGION", "endpoint": "endpoint"},
}
# The keys each kind reads; any other key is reported as ignored (a typo must not be silent).
_KNOWN_KEYS: dict[str, set[str]] = {
    "dcache": {"name", "endpoint", "user", "password", "folder", "statefile", "components"},
    "kafka": {
        "name",
        "bootstrap_servers",
        "topic",
        "group_id",
        "sasl_username",
        "sasl_password",
        "security_protocol",
        "sasl_mechanism",
        "ssl_context",
        "separate_by_key",
        "message_demarcator",
        "alterations",
        "components",
    },
    "sqs": {"name", "AWS_DEFAULT_REGION", "queue_name", "endpoint", "components", "alterations"},
    "s3": {"name", "AWS_DEFAULT_REGION", "AWS_S3_BUCKET", "endpoint", "components", "alterations"},
    "oscar": {"name", "endpoint", "service", "token", "user", "password", "components"},
}
for _aws in ("sqs", "s3"):
    _KNOWN_KEYS[_aws] |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
_LABEL_MAX = 63


class DcniosError(InvalidServiceError):
    """The workflow file cannot be converted; one entry per offending path, with its line."""

    what = "The DCNiOS workflow"


@dataclass
class Conversion:
    """What a workflow became: bridge definitions (credentials in clear, ready to send),
    warnings about what they leave out, and each bridge's origin in the file."""

    bridges: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)

    def masked(self) -> list[dict[str, Any]]:
        """The definitions with every credential shown as `********` (for printing)."""
        return [
            {**b, "credentials": dict.fromkeys(b["credentials"], MASK)} if "credentials" in b else b
            for b in self.bridges
        ]


def describe(problem: FieldError, source: str) -> str:
    """`file:line: path: message`, as `oscar validate` prints FDL errors."""
    where = f"{source}:{problem.line}" if problem.line else source
    return f"{where}: {problem.field or 'file'}: {problem.message}"


def load(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Conversion:
    """Read and convert a workflow file (`DcniosError` when it cannot be read or converted)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise DcniosError([FieldError("", f"cannot read the file: {reason}")], str(path)) from None
    return convert(text, source=str(path), environ=environ)


def convert(
    text: str, *, source: str = "<dcnios>", environ: Mapping[str, str] | None = None
) -> Conversion:
    """Convert workflow text. `environ` holds the AWS_* variables and HOME DCNiOS would read
    (none when not given, so the result depends only on the arguments)."""
    try:
        data, lines = compose_with_lines(text)
    except yaml.YAMLError as exc:
        raise DcniosError([yaml_problem(exc)], source) from None
    converter = _Converter(lines, dict(environ or {}))
    converter.run(data)
    if converter.errors:
        raise DcniosError(sorted(converter.errors, key=_by_line), source)
    # In file order (stable: the notes on one element keep theirs).
    converter.result.warnings.sort(key=_by_line)
    return converter.result


def _by_line(problem: FieldError) -> int:
    return problem.line or 0


@dataclass
class _Element:
    """One source, destination or generic element of the workflow."""

    kind: str
    path: str
    raw: dict[str, Any]
    name: str
    template: dict[str, Any] | None = None  # the bridge fields a source gives (None: no bridge)


def _label(raw: str) -> str:
    """`raw` made a DNS label: lowercase, `_` and other characters as `-`, at most 63 long."""
    label = re.sub(r"[^a-z0-9-]+", "-", raw.lower().replace("_", "-"))
    label = re.sub(r"-{2,}", "-", label).strip("-")[:_LABEL_MAX].rstrip("-")
    return label or "bridge"


class _Converter:
    """One conversion: walks the file, collecting bridges, warnings and errors."""

    def __init__(self, lines: dict[Loc, int], environ: dict[str, str]) -> None:
        self.lines = lines
        self.environ = environ
        self.result = Conversion()
        self.errors: list[FieldError] = []
        self.elements: dict[str, _Element] = {}
        self._shared: tuple[str, str] | None = None
        self._shared_read = False  # the file is read once, and warned about once

    # --- reporting ------------------------------------------------------------------------
    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message, line_of(path, self.lines)))

    def warn(self, path: str, message: str) -> None:
        self.result.warnings.append(FieldError(path, message, line_of(path, self.lines)))

    def text(self, element: _Element, key: str, *, required: bool = False) -> str:
        """A scalar value as text ('' when absent); an error when required and absent."""
        value = element.raw.get(key)
        path = f"{element.path}.{key}"
        if isinstance(value, list) and key == "bootstrap_servers":
            value = ",".join(str(v) for v in value)
        if isinstance(value, dict | list):
            self.error(path, "must be a single value, not a list or mapping")
            return ""
        if isinstance(value, bool):
            value = "true" if value else "false"
        text = "" if value is None else str(value).strip()
        if required and not text:
            self.error(path, "is required")
        return text

    # --- the walk -------------------------------------------------------------------------
    def run(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("nifi"), dict):
            self.error("nifi", "is required: a DCNiOS workflow is a mapping with a `nifi` mapping")
            return
        for key in data:
            if key != "nifi":
                self.warn(str(key), "not part of a DCNiOS workflow: ignored")
        nifi: dict[str, Any] = data["nifi"]
        access = [k for k in _NIFI_ACCESS if k in nifi]
        if access:
            self.warn(
                "nifi",
                f"{', '.join(access)}: there is no NiFi here (bridges run inside the OSCAR "
                "control plane): ignored",
            )
        for key, value in nifi.items():
            if key in _NIFI_ACCESS or key == "connection":
                continue
            if key in ("Source", "Destination"):
                kinds = SOURCE_KINDS if key == "Source" else DESTINATION_KINDS
                self.group(f"nifi.{key}", value, kinds)
            elif key in SOURCE_KINDS or key in DESTINATION_KINDS or key == "generic":
                self.elements_of(f"nifi.{key}", key, value)
            else:
                self.warn(f"nifi.{key}", "not a DCNiOS source, destination or section: ignored")
        for element in list(self.elements.values()):
            self.prepare(element)
        self.connect(nifi.get("connection"))

    def group(self, path: str, value: Any, kinds: dict[str, str]) -> None:
        """`nifi.Source` / `nifi.Destination`: a mapping of kind → list of elements."""
        if value is None:
            return
        if not isinstance(value, dict):
            self.error(path, "must be a mapping of element kinds to lists")
            return
        for key, items in value.items():
            if key in kinds:
                self.elements_of(f"{path}.{key}", key, items)
            else:
                known = ", ".join(dict.fromkeys(kinds))
                self.warn(f"{path}.{key}", f"not a DCNiOS kind here ({known}): ignored")

    def elements_of(self, path: str, key: str, items: Any) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            self.error(path, "must be a list")
            return
        kind = SOURCE_KINDS.get(key) or DESTINATION_KINDS.get(key) or "generic"
        for index, raw in enumerate(items):
            where = f"{path}[{index}]"
            if not isinstance(raw, dict):
                self.error(where, "must be a mapping")
                continue
            element = _Element(kind, where, raw, "")
            element.name = self.text(element, "name", required=True)
            if not element.name:
                continue
            other = self.elements.get(element.name)
            if other is not None:
                self.error(f"{where}.name", f"'{element.name}' is also the name of {other.path}")
                continue
            self.elements[element.name] = element

    # --- elements -------------------------------------------------------------------------
    def prepare(self, element: _Element) -> None:
        """Check an element and warn about what it loses; sources get their bridge fields."""
        kind, path = element.kind, element.path
        if kind == "generic":
            source = self.text(element, "file") or "?"
            self.warn(
                path,
                f"generic element '{element.name}' (a custom NiFi process group from "
                f"'{source}') cannot become a bridge: dropped, with its connections",
            )
            return
        if kind == "rucio":
            self.warn(
                path,
                f"RUCIO source '{element.name}' (Rucio's AMQP messages) has no bridge type: "
                "dropped, with its connections",
            )
            return
        if kind == "puts3":
            self.warn(
                path,
                f"PutS3 destination '{element.name}' (NiFi writing to S3) is not an event "
                "source: dropped; give the service an s3 output instead",
            )
            return
        unknown = sorted(str(k) for k in element.raw if k not in _KNOWN_KEYS[kind])
        if unknown:
            self.warn(path, f"{', '.join(unknown)}: not a DCNiOS key of this element: ignored")
        self.dropped_common(element)
        if kind == "oscar":
            self.text(element, "service", required=True)
            lost = [k for k in ("endpoint", "token", "user", "password") if k in element.raw]
            if lost:
                self.warn(
                    path,
                    f"{', '.join(lost)}: not used: a bridge records jobs in the OSCAR cluster "
                    "it is applied to, with no token (apply it to that cluster)",
                )
            return
        element.template = getattr(self, f"source_{kind}")(element)

    def dropped_common(self, element: _Element) -> None:
        """`components` (NiFi scheduling) and `alterations` (NiFi processors) of any element."""
        path = element.path
        if "components" in element.raw:
            self.warn(
                f"{path}.components",
                "NiFi processor scheduling does not apply: a bridge fetches as events come "
                "(its `interval` bounds one wait): ignored",
            )
        alterations = element.raw.get("alterations")
        if alterations is None:
            return
        if not isinstance(alterations, list):
            self.error(f"{path}.alterations", "must be a list")
            return
        for index, step in enumerate(alterations):
            where = f"{path}.alterations[{index}]"
            action = step.get("action") if isinstance(step, dict) else None
            if not isinstance(action, str) or not action:
                self.error(f"{where}.action", "is required")
            elif action == "Merge":
                self.warn(
                    where,
                    "Merge (several messages in one) is not done: each message becomes a job",
                )
            elif action in ("Encode", "Decode"):
                self.warn(
                    where,
                    f"{action} is not done: the job receives the event as it arrives "
                    "(encode or decode it in the service's script)",
                )
            else:
                self.warn(where, f"'{action}' is not a DCNiOS alteration: ignored")

    def source_dcache(self, element: _Element) -> dict[str, Any]:
        path = element.path
        template: dict[str, Any] = {
            "type": "dcache",
            "endpoint": self.text(element, "endpoint", required=True),
        }
        folder = self.text(element, "folder")
        if folder:
            template["folder"] = folder
        else:
            self.warn(path, "no folder: the bridge watches the path of the service's webdav input")
        credentials = self.pair(element, "user", "password")
        if credentials:
            template["credentials"] = credentials
        if "statefile" in element.raw:
            self.warn(
                f"{path}.statefile",
                "not needed: the bridge keeps its dCache channel and last event id in the "
                "control plane's database: ignored",
            )
        return template

    def pair(self, element: _Element, user_key: str, password_key: str) -> dict[str, str]:
        """Both credentials, or neither (an error when only one is given)."""
        user, password = self.text(element, user_key), self.text(element, password_key)
        if bool(user) != bool(password):
            missing = password_key if user else user_key
            given = user_key if user else password_key
            self.error(f"{element.path}.{missing}", f"is required with {given}")
            return {}
        return {user_key: user, password_key: password} if user else {}

    def source_kafka(self, element: _Element) -> dict[str, Any]:
        path, raw = element.path, element.raw
        protocol = (self.text(element, "security_protocol") or "SASL_SSL").upper()
        template: dict[str, Any] = {
            "type": "kafka",
            "bootstrap_servers": self.text(element, "bootstrap_servers", required=True),
            "topic": self.text(element, "topic", required=True),
            "security_protocol": protocol,
            "sasl_mechanism": (self.text(element, "sasl_mechanism") or "PLAIN").upper(),
            # NiFi handed each message to OSCAR as it was, not as an S3 notification.
            "payload": "raw",
        }
        group = self.text(element, "group_id")
        if group:
            template["group_id"] = group
            self.warn(
                f"{path}.group_id",
                f"the bridge consumes in group '{group}', as the NiFi flow did: it resumes "
                "at that group's committed offsets; stop the DCNiOS flow first, or the two "
                "share the topic's messages",
            )
        else:
            self.warn(path, "no group_id: the bridge consumes in group oscar-<bridge name>")
        if protocol.startswith("SASL"):
            credentials = {k: self.text(element, k) for k in ("sasl_username", "sasl_password")}
            for key, value in credentials.items():
                if not value:
                    self.error(f"{path}.{key}", f"is required with security_protocol {protocol}")
            template["credentials"] = credentials
        elif "sasl_username" in raw or "sasl_password" in raw:
            self.warn(path, f"sasl_username, sasl_password: not used with {protocol}: dropped")
        self.truststore(element)
        if str(raw.get("separate_by_key", "")).lower() == "true":
            self.warn(
                f"{path}.separate_by_key",
                "NiFi bundled messages (split by key and message_demarcator) into one flow "
                "file; a bridge makes one job per message: ignored",
            )
        elif "message_demarcator" in raw:
            self.warn(
                f"{path}.message_demarcator",
                "used by DCNiOS only with separate_by_key true; each message is one job: ignored",
            )
        return template

    def truststore(self, element: _Element) -> None:
        """The PKCS12 truststore NiFi used: bridges read PEM; say how to convert it."""
        context = element.raw.get("ssl_context")
        path = f"{element.path}.ssl_context"
        if context is None:
            return
        if not isinstance(context, dict):
            self.error(path, "must be a mapping (Truststore_Filename, Truststore_Password)")
            return
        filename = str(context.get("Truststore_Filename") or "truststore.p12")
        pem = f"{Path(filename).stem}.pem"
        self.warn(
            path,
            f"the PKCS12 truststore '{filename}' is not used (bridges read PEM): on the OSCAR "
            f"server run `openssl pkcs12 -in {filename} -nokeys -out {pem}` (it asks for the "
            f"truststore password; add -legacy for old files) and set `ssl_cafile: "
            f"/path/to/{pem}` on the bridge; until then the server's default CAs are trusted",
        )

    def source_sqs(self, element: _Element) -> dict[str, Any]:
        endpoint = self.text(element, "endpoint")
        queue = self.text(element, "queue_name", required=True)
        template = self.aws(element, endpoint)
        template.update({"queue": queue, "payload": "raw"})
        self.warn(
            element.path,
            f"DCNiOS created queue '{queue}' on apply; the bridge does not: it must exist",
        )
        return template

    def source_s3(self, element: _Element) -> dict[str, Any]:
        bucket = self.text(element, "AWS_S3_BUCKET", required=True)
        template = self.aws(element, self.text(element, "endpoint"))
        # DCNiOS's code names the queue it makes for a bucket `<bucket>_events`.
        queue = f"{bucket}_events"
        template.update({"queue": queue, "payload": "s3"})
        self.warn(
            element.path,
            f"DCNiOS created queue '{queue}' and sent the s3:ObjectCreated:* notifications of "
            f"bucket '{bucket}' to it; the bridge creates neither: keep DCNiOS's, or create "
            "them (`aws sqs create-queue`, `aws s3api put-bucket-notification-configuration`)",
        )
        self.warn(
            element.path,
            f"the service needs an s3 input on bucket '{bucket}' (e.g. storage_provider "
            f"s3.<id>, path {bucket}/<folder>): records of other objects are ignored",
        )
        return template

    # --- AWS ------------------------------------------------------------------------------
    def aws(self, element: _Element, endpoint: str) -> dict[str, Any]:
        """Region, endpoint and credentials of an SQS-reading source."""
        region = self.text(element, "AWS_DEFAULT_REGION", required=not endpoint)
        template: dict[str, Any] = {"type": "sqs", "region": region or "us-east-1"}
        if endpoint:
            template["endpoint"] = endpoint
        credentials = self.aws_credentials(element)
        if credentials:
            template["credentials"] = credentials
        return template

    def aws_credentials(self, element: _Element) -> dict[str, str]:
        """DCNiOS's order: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, then
        `[default]` of ~/.aws/credentials, then the element's own keys."""
        path = element.path
        in_file = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k in element.raw]
        unused = f"; the file's {', '.join(in_file)} are not used" if in_file else ""
        key = self.environ.get("AWS_ACCESS_KEY_ID", "")
        secret = self.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if key and secret:
            self.warn(
                path,
                "AWS credentials taken from the environment (AWS_ACCESS_KEY_ID, "
                f"AWS_SECRET_ACCESS_KEY), as DCNiOS does{unused}",
            )
            return {"access_key": key, "secret_key": secret}
        shared = self.shared_credentials(path)
        if shared is not None:
            self.warn(
                path,
                "AWS credentials taken from ~/.aws/credentials [default], as DCNiOS does" + unused,
            )
            return {"access_key": shared[0], "secret_key": shared[1]}
        pair = self.pair(element, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if pair:
            self.warn(path, "AWS credentials taken from the workflow file")
            return {
                "access_key": pair["AWS_ACCESS_KEY_ID"],
                "secret_key": pair["AWS_SECRET_ACCESS_KEY"],
            }
        if not in_file:
            self.warn(
                path,
                "no AWS credentials (environment, ~/.aws/credentials or the file): the bridge "
                "uses the OSCAR server's own (its environment or instance role)",
            )
        return {}

    def shared_credentials(self, path: str) -> tuple[str, str] | None:
        """`[default]` of $HOME/.aws/credentials (read once), or None."""
        if self._shared_read:
            return self._shared
        self._shared_read = True
        home = self.environ.get("HOME")
        file = Path(home) / ".aws" / "credentials" if home else None
        if file is None or not file.is_file():
            return None
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(file, encoding="utf-8")
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            # Only the error's type: a parse error quotes the line, which may hold a key.
            self.warn(path, f"~/.aws/credentials cannot be read ({type(exc).__name__}): skipped")
            return None
        section = parser["default"] if parser.has_section("default") else {}
        key = str(section.get("aws_access_key_id", "")).strip()
        secret = str(section.get("aws_secret_access_key", "")).strip()
        if key and secret:
            self._shared = (key, secret)
        else:
            self.warn(
                path,
                "~/.aws/credentials has no [default] aws_access_key_id and "
                "aws_secret_access_key: skipped",
            )
        return self._shared

    # --- connections and bridges ----------------------------------------------------------
    def connect(self, connections: Any) -> None:
        """Pair sources with OSCAR destinations, then name and check the bridges."""
        if connections is not None and not isinstance(connections, list):
            self.error("nifi.connection", "must be a list of {from, to}")
            return
        pairs: list[tuple[_Element, _Element, str]] = []
        seen: set[tuple[str, str]] = set()
        for index, item in enumerate(connections or []):
            path = f"nifi.connection[{index}]"
            if not isinstance(item, dict):
                self.error(path, "must be a mapping {from, to}")
                continue
            ends = []
            for end in ("from", "to"):
                value = item.get(end)
                name = str(value).strip() if isinstance(value, str | int) else ""
                element = self.elements.get(name)
                if not name:
                    self.error(f"{path}.{end}", "is required")
                elif element is None:
                    known = ", ".join(sorted(self.elements)) or "none"
                    self.error(f"{path}.{end}", f"'{name}' names no element (known: {known})")
                ends.append(element)
            start, target = ends
            if start is None or target is None:
                continue
            if (start.name, target.name) in seen:
                self.warn(path, f"repeats the connection {start.name} → {target.name}: ignored")
                continue
            seen.add((start.name, target.name))
            if start.kind not in _FIELD_KEYS or target.kind != "oscar":
                if start.kind in ("generic", "rucio") or target.kind in ("generic", "puts3"):
                    continue  # the element's own warning says it is dropped
                self.warn(
                    path,
                    f"{start.name} → {target.name} is not a source → OSCAR connection: dropped",
                )
                continue
            # An element with errors has been reported already; its bridge would only repeat them.
            if start.template is not None and not any(
                e.field.startswith((start.path, target.path)) for e in self.errors
            ):
                pairs.append((start, target, path))
        connected = {start.name for start, _, _ in pairs}
        for element in self.elements.values():
            if element.kind in _FIELD_KEYS and element.name not in connected:
                self.warn(element.path, f"'{element.name}' is connected to no OSCAR destination")
        fan_out = {name: sum(1 for s, _, _ in pairs if s.name == name) for name in connected}
        for start, target, path in pairs:
            wanted = start.name if fan_out[start.name] == 1 else f"{start.name}-{target.name}"
            self.add_bridge(start, target, path, wanted)
        if self.result.bridges:
            self.warn(
                "nifi",
                "stop (or delete) the DCNiOS flow before these bridges run, or both take the "
                "same events",
            )

    def add_bridge(self, start: _Element, target: _Element, path: str, wanted: str) -> None:
        name = _label(wanted)
        if name != wanted:
            self.warn(
                f"{start.path}.name",
                f"'{wanted}' is not a DNS label (lowercase letters, digits, '-'): the bridge is "
                f"named '{name}'",
            )
        taken = {b["name"] for b in self.result.bridges}
        if name in taken:
            base, number = name, 2
            while name in taken:
                suffix = f"-{number}"
                name = base[: _LABEL_MAX - len(suffix)].rstrip("-") + suffix
                number += 1
            self.warn(path, f"bridge name '{base}' is already taken: this one is named '{name}'")
        service = str(target.raw.get("service") or "").strip()
        template = start.template or {}
        bridge = {"name": name, "type": template.get("type"), "service": service, **template}
        try:
            parse_bridge(bridge)
        except InvalidBridgeError as exc:
            keys = _FIELD_KEYS[start.kind]
            for problem in exc.errors:
                top = problem.field.split(".")[0].split("[")[0]
                if top == "service":
                    where = f"{target.path}.service"
                elif top in keys:
                    where = f"{start.path}.{keys[top]}"
                else:
                    where = start.path
                self.error(where, problem.message)
            return
        self.result.bridges.append(bridge)
        self.result.origins[name] = f"{start.path} → {target.path}"
