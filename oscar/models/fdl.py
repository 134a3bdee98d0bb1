"""FDL files: `functions.oscar: [{<cluster_id>: Service}]` plus top-level providers, clusters
and (ours, not upstream's) `bridges`.

Parsing keeps the YAML line of every node so that each error names the file, the service, the
field and the line. A `script` given as a single line is a path relative to the FDL file and is
inlined (as oscar-cli does); a multi-line `script` is taken as the script text itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from oscar.errors import FieldError, InvalidServiceError
from oscar.models.bridge import AnyBridge, InvalidBridgeError, parse_bridge
from oscar.models.service import Cluster, Service
from oscar.models.storage import PROVIDER_TYPES, StorageProviders
from oscar.models.validation import format_loc, parse_service, pydantic_field_errors

Loc = tuple[str | int, ...]


class FDLError(InvalidServiceError):
    """An FDL file could not be turned into services; every error carries its YAML line."""


@dataclass
class FDLService:
    """One entry of `functions.oscar`: the target cluster id and its validated service."""

    cluster_id: str
    service: Service


@dataclass
class FDL:
    """A parsed FDL file."""

    services: list[FDLService] = field(default_factory=list)
    storage_providers: StorageProviders = field(default_factory=StorageProviders)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    # Event bridges (`bridges:`), applied after the services they feed.
    bridges: list[AnyBridge] = field(default_factory=list)
    lines: dict[Loc, int] = field(default_factory=dict, repr=False)

    def line_of(self, path: str) -> int | None:
        """The YAML line of a field path such as `bridges[0].service` (or of its parent)."""
        return line_of(path, self.lines)


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    """Convert a composed YAML node to Python data, recording the 1-based line of every path."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            )
            result[key] = _to_python(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def compose_with_lines(text: str) -> tuple[Any, dict[Loc, int]]:
    """YAML text as Python data, plus the 1-based line of every path in it (`yaml.YAMLError`
    when it is not YAML)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Loc, int] = {}
    return (_to_python(root, (), lines) if root is not None else None), lines


def yaml_problem(exc: yaml.YAMLError) -> FieldError:
    """A YAML syntax error as a `FieldError` with its line."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return FieldError("", f"invalid YAML: {problem}", line)


def line_of(path: str, lines: dict[Loc, int]) -> int | None:
    """The line of a field path (`input[0].path`), or of its nearest parent that has one."""
    return _line_for(_loc_of(path), lines)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _loc_of(path: str) -> Loc:
    """Invert `format_loc` well enough to look up YAML lines: `input[0].path` -> loc tuple."""
    loc: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        loc.append(int(part[1:-1]) if part.startswith("[") and part.endswith("]") else part)
    return tuple(loc)


def _inline_script(raw: dict[str, Any], base_dir: Path) -> str | None:
    """Replace a one-line `script` with the content of the file it names; return an error."""
    script = raw.get("script")
    # A plain YAML scalar has no newline; a block (`|`) always ends with one, even for one line.
    if not isinstance(script, str) or "\n" in script or not script.strip():
        return None
    script_path = Path(script.strip())
    if not script_path.is_absolute():
        script_path = base_dir / script_path
    try:
        raw["script"] = script_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"script file '{script_path}' does not exist (paths are relative to the FDL file)"
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read script file '{script_path}': {exc}"
    return None


def parse_fdl(text: str, *, source: str = "<fdl>", base_dir: Path | None = None) -> FDL:
    """Parse FDL text; scripts are resolved relative to `base_dir`. Raises `FDLError`."""
    base_dir = base_dir or Path.cwd()
    try:
        data, lines = compose_with_lines(text)
    except yaml.YAMLError as exc:
        raise FDLError([yaml_problem(exc)], source) from None

    def fail(loc: Loc, message: str) -> FDLError:
        return FDLError([FieldError(format_loc(loc), message, _line_for(loc, lines))], source)

    if not isinstance(data, dict):
        raise fail((), "an FDL file must be a mapping with a 'functions' key")
    functions = data.get("functions")
    if not isinstance(functions, dict) or "oscar" not in functions:
        raise fail(("functions",), "must be a mapping with an 'oscar' list")
    entries = functions["oscar"]
    if not isinstance(entries, list) or not entries:
        raise fail(("functions", "oscar"), "must be a non-empty list of {cluster_id: service}")

    errors: list[FieldError] = []
    shared: dict[str, dict[str, Any]] = {}
    for key in ("storage_providers", "clusters"):
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise fail((key,), "must be a mapping")
        shared[key] = value or {}
    fdl = FDL(lines=lines)
    try:
        fdl.storage_providers = StorageProviders.model_validate(shared["storage_providers"])
        fdl.clusters = {k: Cluster.model_validate(v or {}) for k, v in shared["clusters"].items()}
    except ValidationError as exc:
        for err in pydantic_field_errors(exc):
            is_provider = err.field.split(".")[0] in PROVIDER_TYPES
            prefix = "storage_providers" if is_provider else "clusters"
            path = f"{prefix}.{err.field}"
            errors.append(FieldError(path, err.message, _line_for(_loc_of(path), lines)))
        raise FDLError(errors, source) from None

    for index, entry in enumerate(entries):
        loc: Loc = ("functions", "oscar", index)
        if not isinstance(entry, dict) or not entry:
            errors.append(
                FieldError(
                    format_loc(loc),
                    "must be a mapping {cluster_id: service}",
                    _line_for(loc, lines),
                )
            )
            continue
        for cluster_id, raw in entry.items():
            svc_loc: Loc = (*loc, cluster_id)
            if not isinstance(raw, dict):
                errors.append(
                    FieldError(
                        format_loc(svc_loc),
                        "the service must be a mapping",
                        _line_for(svc_loc, lines),
                    )
                )
                continue
            where = format_loc(svc_loc)
            label = f"service '{raw.get('name', '?')}'"
            raw = {**raw, "cluster_id": str(cluster_id)}
            if problem := _inline_script(raw, base_dir):
                line = _line_for((*svc_loc, "script"), lines)
                errors.append(FieldError(f"{where}.script", f"{label}: {problem}", line))
                raw["script"] = "# unreadable"  # keep validating the other fields
            # oscar-cli copies the top-level providers and clusters into every service; the
            # service's own entries win on the same id.
            raw["storage_providers"] = _merge_providers(
                shared["storage_providers"], raw.get("storage_providers")
            )
            raw["clusters"] = {**shared["clusters"], **(raw.get("clusters") or {})}
            try:
                svc = parse_service(raw)
            except InvalidServiceError as exc:
                for err in exc.errors:
                    line = _line_for((*svc_loc, *_loc_of(err.field)), lines)
                    errors.append(
                        FieldError(f"{where}.{err.field}", f"{label}: {err.message}", line)
                    )
                continue
            if problem is None:
                fdl.services.append(FDLService(str(cluster_id), svc))
    fdl.bridges = _parse_bridges(data.get("bridges"), lines, errors)
    if errors:
        raise FDLError(errors, source)
    return fdl


def _parse_bridges(raw: object, lines: dict[Loc, int], errors: list[FieldError]) -> list[AnyBridge]:
    """Validate the top-level `bridges` list; problems are appended to `errors` with lines."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError("bridges", "must be a list of bridges", line_of("bridges", lines)))
        return []
    bridges: list[AnyBridge] = []
    first_with: dict[str, int] = {}
    for index, item in enumerate(raw):
        prefix = f"bridges[{index}]"
        try:
            bridge = parse_bridge(item, prefix=prefix)
        except InvalidBridgeError as exc:
            errors.extend(
                FieldError(e.field, e.message, line_of(e.field, lines)) for e in exc.errors
            )
            continue
        # The server would take the second as an update of the first: refuse the ambiguity.
        if bridge.name in first_with:
            path = f"{prefix}.name"
            message = (
                f"bridge '{bridge.name}' is already defined by bridges[{first_with[bridge.name]}]"
            )
            errors.append(FieldError(path, message, line_of(path, lines)))
            continue
        first_with[bridge.name] = index
        bridges.append(bridge)
    return bridges


def _merge_providers(shared: dict[str, Any], own: object) -> object:
    if own is None:
        return shared
    if not isinstance(own, dict):
        return own  # validation reports the wrong type
    merged = {kind: dict(ids or {}) for kind, ids in shared.items() if isinstance(ids, dict)}
    for kind, ids in own.items():
        if isinstance(ids, dict) and isinstance(merged.get(kind), dict):
            merged[kind].update(ids)
        else:
            merged[kind] = ids
    return merged


def load_fdl(path: str | Path) -> FDL:
    """Read and parse an FDL file; scripts are resolved relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        error = FieldError("", f"cannot read FDL file: {exc.strerror}")
        raise FDLError([error], str(path)) from None
    return parse_fdl(text, source=str(path), base_dir=path.parent)
