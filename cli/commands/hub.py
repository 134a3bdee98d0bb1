"""`oscar-cli hub list|deploy|validate`: curated services from OSCAR Hub.

As upstream, the hub is a GitHub repository (default `grycap/oscar-hub`, folder `crates`, ref
`main`) read through GitHub's contents API: one folder per service with an RO-Crate
(`ro-crate-metadata.json`), an FDL and its script. `--api-base` (or `OSCAR_CLI_HUB_API`) points
at another contents-API server, e.g. a mirror on a machine without internet; `--local-path`
reads a checked-out crate instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import posixpath
import shlex
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
import yaml

from cli.client import ClientError, OscarClient
from cli.common import (
    DEFAULT_CONFIG,
    ClusterOption,
    ConfigOption,
    DebugOption,
    alias,
    cluster_client,
    fail,
    group_options,
)
from oscar.models.fdl import FDLError, load_fdl

app = typer.Typer(help="Curated services from OSCAR Hub.", no_args_is_help=True)
group_options(app)

DEFAULT_API = "https://api.github.com"
METADATA = "ro-crate-metadata.json"

OwnerOption = Annotated[str, typer.Option("--owner", help="GitHub owner of the hub.")]
RepoOption = Annotated[str, typer.Option("--repo", help="GitHub repository of the hub.")]
PathOption = Annotated[str, typer.Option("--path", help="Folder of the services in the repo.")]
RefOption = Annotated[str, typer.Option("--ref", help="Branch, tag or commit.")]
ApiOption = Annotated[
    str,
    typer.Option(
        "--api-base", envvar="OSCAR_CLI_HUB_API", help="GitHub contents-API base URL of the hub."
    ),
]
NameOption = Annotated[
    str | None, typer.Option("--name", "-n", help="Use this OSCAR service name instead.")
]
LocalOption = Annotated[
    Path | None,
    typer.Option("--local-path", help="Read the crate from this folder (or FDL file) instead."),
]
SlugArgument = Annotated[str, typer.Argument(metavar="SERVICE_SLUG")]


class HubError(Exception):
    """The hub could not be read; the message is for the user."""


class Hub:
    """Read-only access to the hub repository through the GitHub contents API."""

    def __init__(self, api: str, owner: str, repo: str, root: str, ref: str) -> None:
        self.api, self.owner, self.repo, self.ref = api.rstrip("/"), owner, repo, ref
        self.root = "" if root.strip("/") in ("", ".") else root.strip("/")
        self._http = httpx.Client(
            timeout=15, follow_redirects=True, headers={"User-Agent": "oscar-cli"}
        )

    def close(self) -> None:
        self._http.close()

    def path_of(self, slug: str) -> str:
        return posixpath.join(self.root, slug) if self.root else slug

    def _url(self, repo_path: str) -> str:
        segments = "/".join(quote(s, safe="") for s in repo_path.strip("/").split("/") if s)
        url = f"{self.api}/repos/{quote(self.owner)}/{quote(self.repo)}/contents"
        return (url + f"/{segments}" if segments else url) + f"?ref={quote(self.ref)}"

    def _get(self, repo_path: str, accept: str) -> httpx.Response | None:
        try:
            response = self._http.get(self._url(repo_path), headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise HubError(f"cannot reach the hub at {self.api}: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise HubError(f"hub: {response.text.strip()[:200]} ({response.status_code})")
        return response

    def entries(self, repo_path: str) -> list[dict[str, Any]]:
        response = self._get(repo_path, "application/vnd.github+json")
        if response is None:
            raise HubError(f"not found in the hub: {repo_path or '/'}")
        try:
            listing = response.json()
        except ValueError:
            raise HubError(f"hub: {repo_path or '/'} is not a folder listing") from None
        if not isinstance(listing, list):
            raise HubError(f"hub: {repo_path or '/'} is not a folder")
        return [e for e in listing if isinstance(e, dict)]

    def file(self, repo_path: str) -> bytes | None:
        response = self._get(repo_path, "application/vnd.github.raw")
        return None if response is None else response.content


def _hub(api: str, owner: str, repo: str, path: str, ref: str) -> Hub:
    return Hub(api, owner, repo, path, ref)


def _crate(raw: bytes, where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The crate's root dataset (`./`) and every entity by id."""
    try:
        graph = json.loads(raw).get("@graph") or []
    except (ValueError, AttributeError):
        raise HubError(f"{where}: not an RO-Crate (invalid JSON)") from None
    entities = {e["@id"]: e for e in graph if isinstance(e, dict) and isinstance(e.get("@id"), str)}
    if "./" not in entities:
        raise HubError(f"{where}: the RO-Crate has no root dataset './'")
    return entities["./"], entities


def _value(raw: Any, entities: dict[str, dict[str, Any]]) -> str:
    """A person/licence as text: its name, else its id (upstream's resolution order)."""
    if isinstance(raw, str):
        entity = entities.get(raw)
        if entity is None:
            return raw
        return str(entity.get("name") or entity.get("identifier") or entity.get("url") or raw)
    if isinstance(raw, dict):
        return str(raw.get("name") or "") or _value(raw.get("@id") or "", entities)
    if isinstance(raw, list):
        return ", ".join(v for v in (_value(item, entities) for item in raw) if v)
    return ""


def _summary(slug: str, raw: bytes, where: str, tree: str) -> dict[str, str]:
    dataset, entities = _crate(raw, where)
    summary = {
        "slug": slug,
        "name": str(dataset.get("name") or ""),
        "description": str(dataset.get("description") or ""),
        "creator": _value(dataset.get("creator"), entities)
        or _value(dataset.get("author"), entities),
        "url": str(dataset.get("URL") or tree),
        "license": _value(dataset.get("license"), entities),
        "repository_url": tree,
        "metadata_source": where,
    }
    return {k: v for k, v in summary.items() if v or k in ("slug", "name")}


@app.command("list")
def list_services(
    owner: OwnerOption = "grycap",
    repo: RepoOption = "oscar-hub",
    path: PathOption = "crates",
    ref: RefOption = "main",
    api_base: ApiOption = DEFAULT_API,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """List the curated services (folders with an RO-Crate)."""
    hub = _hub(api_base, owner, repo, path, ref)
    services: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    try:
        for entry in hub.entries(hub.root):
            if entry.get("type") != "dir":
                continue
            folder = str(entry.get("path") or entry.get("name"))
            where = posixpath.join(folder, METADATA)
            try:
                raw = hub.file(where)
                if raw is None:
                    continue
                tree = f"https://github.com/{owner}/{repo}/tree/{ref}/{folder}"
                services.append(_summary(posixpath.basename(folder), raw, where, tree))
            except HubError as exc:
                warnings.append({"path": folder, "error": str(exc)})
    except HubError as exc:
        fail(str(exc))
    finally:
        hub.close()
    services.sort(key=lambda s: (s["name"], s["slug"]))
    if as_json:
        payload: dict[str, Any] = {"services": services}
        if warnings:
            payload["warnings"] = warnings
        typer.echo(json.dumps(payload, indent=2))
    elif not services:
        typer.echo("No curated services found")
    else:
        widths = [max([len(h)] + [len(s.get(k, "")) for s in services]) for h, k in _COLUMNS]
        typer.echo("  ".join(h.ljust(w) for (h, _), w in zip(_COLUMNS, widths, strict=True)))
        for s in services:
            cells = [s.get(k, "").ljust(w) for (_, k), w in zip(_COLUMNS, widths, strict=True)]
            typer.echo("  ".join(cells).rstrip())
    for warning in warnings:
        typer.echo(f"warning: {warning['path']}: {warning['error']}", err=True)


_COLUMNS = [("SLUG", "slug"), ("NAME", "name"), ("CREATOR", "creator")]


def _pick_fdl(names: list[str], slug: str) -> str | None:
    yamls = [n for n in names if n.endswith((".yaml", ".yml"))]
    for name in yamls:
        if name in (f"{slug}.yaml", f"{slug}.yml"):
            return name
    return yamls[0] if yamls else None


def _safe(relative: str) -> str:
    clean = posixpath.normpath(relative.strip())
    if clean.startswith("..") or clean.startswith("/"):
        raise HubError(f"path {relative} escapes the service folder")
    return clean


def _fetch_fdl(hub: Hub, slug: str, workdir: Path) -> Path:
    """Copy the slug's FDL and the scripts it names into `workdir`; return the FDL's path."""
    folder = hub.path_of(slug)
    names = [str(e.get("name")) for e in hub.entries(folder) if e.get("type") == "file"]
    chosen = _pick_fdl(names, slug)
    if chosen is None:
        raise HubError(f"no FDL file in the hub's {folder}")
    text = hub.file(posixpath.join(folder, chosen))
    if text is None:
        raise HubError(f"cannot read {folder}/{chosen} from the hub")
    target = workdir / chosen
    target.write_bytes(text)
    try:
        data = yaml.safe_load(text) or {}
        entries = (data.get("functions") or {}).get("oscar") or []
    except (yaml.YAMLError, AttributeError):
        return target  # load_fdl reports the problem with its line
    for entry in entries if isinstance(entries, list) else []:
        for service in (entry or {}).values() if isinstance(entry, dict) else []:
            script = isinstance(service, dict) and service.get("script")
            if isinstance(script, str) and script.strip() and "\n" not in script:
                relative = _safe(script)
                body = hub.file(posixpath.join(folder, relative))
                if body is None:
                    raise HubError(f"script {script} not found in the hub's {folder}")
                (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
                (workdir / relative).write_bytes(body)
    return target


def _local_fdl(root: Path, slug: str) -> Path:
    if root.is_file():
        if root.suffix.lower() in (".yaml", ".yml"):
            return root
        fail(f"{root} is not an FDL file (.yaml/.yml)")
    for folder in (root, root / slug):
        if folder.is_dir():
            chosen = _pick_fdl(sorted(p.name for p in folder.iterdir() if p.is_file()), slug)
            if chosen:
                return folder / chosen
    fail(f"no FDL file for {slug} under {root}")


def _first_service(fdl_path: Path) -> dict[str, Any]:
    try:
        fdl = load_fdl(fdl_path)
    except FDLError as exc:
        detail = "; ".join(f"{e.field or 'file'}: {e.message}" for e in exc.errors)
        fail(f"the hub's FDL {fdl_path.name} is not valid: {detail}")
    if not fdl.services:
        fail("the FDL does not contain an OSCAR service definition")
    return fdl.services[0].service.model_dump(mode="json", by_alias=True, exclude={"token"})


@app.command("deploy")
def deploy(
    slug: SlugArgument,
    name: NameOption = None,
    local_path: LocalOption = None,
    owner: OwnerOption = "grycap",
    repo: RepoOption = "oscar-hub",
    path: PathOption = "crates",
    ref: RefOption = "main",
    api_base: ApiOption = DEFAULT_API,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Deploy a curated service into a cluster (default source: grycap/oscar-hub, crates/)."""
    if local_path is not None:
        if not local_path.exists():
            fail(f"checking local path: {local_path} does not exist")
        service = _first_service(_local_fdl(local_path, slug))
    else:
        hub = _hub(api_base, owner, repo, path, ref)
        try:
            with tempfile.TemporaryDirectory(prefix="oscar-hub-") as workdir:
                service = _first_service(_fetch_fdl(hub, slug, Path(workdir)))
        except HubError as exc:
            fail(str(exc))
        finally:
            hub.close()
    with cluster_client(config, cluster, debug) as client:
        cid, settings = client.cluster_id, client.cluster
        client.request("GET", "/system/config")  # reachable, and the credentials work
        service["cluster_id"] = cid
        # Upstream copies the cluster's credentials into `clusters` and its MinIO admin keys
        # into `storage_providers.minio.<cluster>`. Here the cluster's store is `minio.default`,
        # which jobs reach with keys scoped to their service, so paths on `minio.<cluster>` are
        # pointed at it instead; cluster credentials go only to a service that delegates.
        for io in [*(service.get("input") or []), *(service.get("output") or [])]:
            if io.get("storage_provider") == f"minio.{cid}":
                io["storage_provider"] = "minio.default"
        if service.get("replicas"):
            service["clusters"] = {
                **(service.get("clusters") or {}),
                cid: {
                    "endpoint": settings.endpoint,
                    "auth_user": settings.auth_user,
                    "auth_password": settings.auth_password,
                    "ssl_verify": settings.ssl_verify,
                },
            }
        if name:
            service["name"] = name
        found = client.request("GET", f"/system/services/{service['name']}", expect=(200, 404))
        exists = found.status_code == 200
        action = "Updating" if exists else "Creating"
        typer.echo(f'{action} service "{service["name"]}" in cluster "{cid}"...')
        client.request(
            "PUT" if exists else "POST", "/system/services", json=service, expect=(200, 201, 204)
        )
        typer.echo(f'Service "{service["name"]}" deployed successfully.')


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        return [value["@id"]] if isinstance(value.get("@id"), str) else []
    if isinstance(value, list):
        return [i for item in value for i in _ids(item)]
    return []


def _text(node: dict[str, Any], key: str) -> str:
    value = node.get(key)
    if isinstance(value, dict):
        return str(value.get("@id") or "")
    return value if isinstance(value, str) else ""


def _tests(raw: bytes, where: str) -> list[dict[str, Any]]:
    """Upstream's acceptance tests: the dataset's `subjectOf` nodes, each a command (or
    `hasPart` steps) with an `expectedSubstring` and `supply` inputs."""
    dataset, entities = _crate(raw, where)
    tests = []
    for test_id in _ids(dataset.get("subjectOf")):
        node = entities.get(test_id)
        if node is None:
            continue
        steps = [node] if _text(node, "command").strip() else []
        steps += [entities[p] for p in _ids(node.get("hasPart")) if p in entities]
        supply: dict[str, dict[str, Any]] = {}
        for step in [node, *steps]:
            for input_id in _ids(step.get("supply")):
                entity = entities.get(input_id, {"@id": input_id})
                for key in (input_id, _text(entity, "name"), posixpath.basename(input_id)):
                    if key:
                        supply.setdefault(key, entity)
        tests.append(
            {
                "id": test_id,
                "name": _text(node, "name") or test_id,
                "steps": steps,
                "supply": supply,
            }
        )
    if not tests:
        raise HubError(f"{where}: the RO-Crate defines no acceptance tests")
    return tests


class _Source:
    """Where the crate's files come from: the hub or a local folder."""

    def __init__(self, hub: Hub | None, folder: str, local: Path | None) -> None:
        self.hub, self.folder, self.local = hub, folder, local

    def read(self, relative: str) -> bytes:
        if relative.startswith(("http://", "https://")):
            try:
                response = httpx.get(relative, timeout=30, follow_redirects=True)
                response.raise_for_status()
                return response.content
            except httpx.HTTPError as exc:
                raise HubError(f"cannot download {relative}: {exc}") from None
        clean = _safe(relative)
        if self.local is not None:
            try:
                return (self.local / clean).read_bytes()
            except OSError:
                raise HubError(f"input {relative} not found in {self.local}") from None
        assert self.hub is not None
        body = self.hub.file(posixpath.join(self.folder, clean))
        if body is None:
            raise HubError(f"input {relative} not found in the hub's {self.folder}")
        return body


def _payload(
    args: list[str], supply: dict[str, dict[str, Any]], source: _Source
) -> tuple[str | None, bytes]:
    """(service name from the command, input bytes) of `service run NAME -i|-f VALUE`."""
    if args and args[0] in ("oscar-cli", "ocli-dev"):
        args = args[1:]
    if len(args) < 2 or args[0] != "service" or args[1] not in ("run", "invoke", "r"):
        raise HubError(f"unsupported acceptance command {shlex.join(args)!r} (only `service run`)")
    name: str | None = None
    mode, value = "", ""
    rest = args[2:]
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg in ("-f", "--file-input", "-i", "--text-input") and index + 1 < len(rest):
            mode, value = ("file" if arg in ("-f", "--file-input") else "text"), rest[index + 1]
            index += 2
            continue
        if name is None and not arg.startswith("-"):
            name = arg
        index += 1
    if not mode:
        raise HubError("the acceptance command gives no --file-input or --text-input")
    entity = supply.get(value)
    if entity is not None:
        for candidate in (_text(entity, "url"), _text(entity, "@id")):
            if candidate.strip():
                return name, source.read(candidate)
    if mode == "file":
        raise HubError(f"input {value!r} of the command is not in the RO-Crate's supply list")
    return name, value.encode()


def _run(client: OscarClient, service: str, payload: bytes) -> str:
    token = client.request("GET", f"/system/services/{service}").json()["token"]
    answer = client.request(
        "POST",
        f"/run/{service}",
        content=base64.b64encode(payload),
        headers={"Authorization": f"Bearer {token}"},
        auth=None,
    ).content
    with contextlib.suppress(ValueError):
        answer = base64.b64decode(answer.strip(), validate=True)
    return answer.decode(errors="replace")


@app.command("validate")
def validate(
    slug: SlugArgument,
    name: NameOption = None,
    local_path: LocalOption = None,
    owner: OwnerOption = "grycap",
    repo: RepoOption = "oscar-hub",
    path: PathOption = "crates",
    ref: RefOption = "main",
    api_base: ApiOption = DEFAULT_API,
    cluster: ClusterOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
    debug: DebugOption = False,
) -> None:
    """Run the acceptance tests of the service's RO-Crate against the deployed service
    (`service run` steps; exit 1 when any fails)."""
    hub: Hub | None = None
    try:
        if local_path is not None:
            if not local_path.exists():
                fail(f"checking local path: {local_path} does not exist")
            folder = local_path if local_path.is_dir() else local_path.parent
            if not (folder / METADATA).is_file() and (folder / slug / METADATA).is_file():
                folder = folder / slug
            try:
                raw = (folder / METADATA).read_bytes()
            except OSError:
                fail(f"no {METADATA} for {slug} under {local_path}")
            source, where = _Source(None, "", folder), str(folder / METADATA)
        else:
            hub = _hub(api_base, owner, repo, path, ref)
            where = posixpath.join(hub.path_of(slug), METADATA)
            found = hub.file(where)
            if found is None:
                fail(f"not found in the hub: {where}")
            raw, source = found, _Source(hub, hub.path_of(slug), None)
        tests = _tests(raw, where)
        typer.echo(f"Acceptance tests for {slug}")
        failed = 0
        with cluster_client(config, cluster, debug) as client:
            for test in tests:
                typer.echo(f"Running acceptance test: {test['name']}")
                passed, lines = bool(test["steps"]), []
                if not test["steps"]:
                    lines.append("  Error: the test defines no executable steps")
                for step in test["steps"]:
                    step_name = _text(step, "name") or _text(step, "@id")
                    expected = _text(step, "expectedSubstring").strip()
                    try:
                        command, payload = _payload(
                            shlex.split(_text(step, "command")), test["supply"], source
                        )
                        output = _run(client, name or command or slug, payload)
                        ok = not expected or expected in output
                        detail = "" if ok else f"expected substring {expected!r} not found"
                    except (HubError, ClientError, ValueError) as exc:
                        ok, output, detail = False, "", str(exc)
                    passed = passed and ok
                    lines.append(f"  - [{'PASS' if ok else 'FAIL'}] {step_name}")
                    if detail:
                        lines.append(f"    Details: {detail}")
                    if output.strip():
                        lines.append(f"    Output preview: {output.strip()[:200]}")
                failed += not passed
                typer.echo(f"- [{'PASS' if passed else 'FAIL'}] {test['name']}")
                for line in lines:
                    typer.echo(line)
        if failed:
            fail(f"{failed} of {len(tests)} acceptance tests failed")
    except HubError as exc:
        fail(str(exc))
    finally:
        if hub is not None:
            hub.close()


alias(app, ["test", "check"], validate)
