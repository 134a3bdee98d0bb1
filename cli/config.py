"""The oscar-cli configuration file, in upstream's format (`~/.oscar-cli/config.yaml`).

```yaml
oscar:
  <cluster id>:
    endpoint: https://oscar.example.org
    auth_user: oscar
    auth_password: secret
    oidc_account_name: ""
    oidc_refresh_token: ""
    ssl_verify: true
    memory: 256Mi
    log_level: INFO
default: <cluster id>
```
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path.home() / ".oscar-cli" / "config.yaml"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or names an unknown cluster."""


class ClusterConfig(BaseModel):
    """One cluster entry."""

    model_config = ConfigDict(extra="allow")

    endpoint: str
    auth_user: str = ""
    auth_password: str = ""
    oidc_account_name: str = ""
    oidc_refresh_token: str = ""
    ssl_verify: bool = True
    memory: str = "256Mi"
    log_level: str = "INFO"


class CliConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="allow")

    oscar: dict[str, ClusterConfig] = Field(default_factory=dict)
    default: str = ""

    def cluster(self, cluster_id: str | None) -> tuple[str, ClusterConfig]:
        """The named cluster, or the default one."""
        chosen = cluster_id or self.default
        if not chosen:
            raise ConfigError(
                "no cluster selected: pass -c ID or set one with `oscar-cli cluster default -s ID`"
            )
        if chosen not in self.oscar:
            known = ", ".join(sorted(self.oscar)) or "none"
            raise ConfigError(f"cluster '{chosen}' is not configured (known: {known})")
        return chosen, self.oscar[chosen]


def load(path: Path) -> CliConfig:
    """Read the file; a missing file is an empty configuration."""
    if not path.exists():
        return CliConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return CliConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def save(config: CliConfig, path: Path) -> None:
    """Write the file atomically with mode 0600 (it holds passwords)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config.model_dump(mode="json"), handle, sort_keys=False)
    os.replace(temp, path)
