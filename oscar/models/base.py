"""Base model shared by every user-facing definition: lenient about keys, strict about values.

Upstream OSCAR decodes JSON with Go's encoding/json, which matches field names case-insensitively
(the upstream cowsay example writes `environment.Variables`), and ignores unknown fields. We accept
the same inputs: keys are matched case-insensitively and unknown keys are logged and dropped.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

log = logging.getLogger("oscar.models")


class OscarModel(BaseModel):
    """A pydantic model that tolerates key case and unknown fields the way upstream does."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, validate_default=False)

    @classmethod
    @functools.cache
    def _canonical_keys(cls) -> dict[str, str]:
        """Lower-cased key -> the key pydantic expects (alias or field name), per subclass."""
        index: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            index[name.lower()] = name
            if field.alias:
                index[field.alias.lower()] = field.alias
        return index

    @model_validator(mode="before")
    @classmethod
    def _normalise_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        index = cls._canonical_keys()
        known = set(index.values())
        result: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                log.warning("ignoring non-string key %r in %s", key, cls.__name__)
                continue
            if key in known:
                result[key] = value
                continue
            canonical = index.get(key.lower())
            if canonical is None:
                log.warning("ignoring unknown field '%s' in %s", key, cls.__name__)
            elif canonical not in data:
                result[canonical] = value
        return result
