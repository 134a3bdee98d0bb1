"""Kubernetes resource quantities ("250m", "1.5", "512Mi", "1e3"): parsing and validation."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str) -> Decimal:
    """Return the value of a Kubernetes quantity in base units; raise ValueError if malformed."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(
            f"'{text}' is not a Kubernetes quantity (examples: '0.5', '500m', '256Mi', '1Gi')"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex only admits decimals
        raise ValueError(f"'{text}' is not a number") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def positive_quantity(value: object, *, allow_empty: bool = False) -> str:
    """Validate a quantity given as a string or a number and return it as a string.

    YAML and JSON clients send `cpu: 1` or `cpu: 0.5` as numbers; Kubernetes wants strings.
    """
    if isinstance(value, bool):
        raise ValueError("must be a quantity such as '0.5' or '256Mi', not a boolean")
    if isinstance(value, int | float):
        value = repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise ValueError("must be a quantity such as '0.5' or '256Mi'")
    value = value.strip()
    if value == "" and allow_empty:
        return value
    if parse_quantity(value) <= 0:
        raise ValueError(f"'{value}' must be greater than zero")
    return value
