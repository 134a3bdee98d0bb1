"""Kubernetes resource quantities ("250m", "1.5", "512Mi", "1e3"): parsing and validation."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Always `fullmatch`: `match` with `$` would accept a trailing newline.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?"
)

# Exponents beyond this many digits are refused outright (no quantity is that large or small).
_MAX_EXPONENT_DIGITS = 4
# The largest quantity accepted anywhere: Kubernetes stores quantities in an int64.
MAX_QUANTITY = Decimal(2**63 - 1)

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
    match = _QUANTITY.fullmatch(text.strip())
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
    # `1e1000000`: build the value from its text (exact, no context limits); raising 10 to a
    # huge power would overflow the decimal context (`decimal.Overflow`, not a ValueError).
    exponent = suffix[1:].lstrip("+")
    if len(exponent.lstrip("-").lstrip("0")) > _MAX_EXPONENT_DIGITS:
        raise ValueError(f"'{text}' is out of range")
    return Decimal(f"{match['number']}e{exponent}")


def positive_quantity(
    value: object,
    *,
    allow_empty: bool = False,
    minimum: Decimal | None = None,
    maximum: Decimal = MAX_QUANTITY,
    unit: str = "",
) -> str:
    """Validate a quantity given as a string or a number and return it as a string.

    YAML and JSON clients send `cpu: 1` or `cpu: 0.5` as numbers; Kubernetes wants strings.
    The value must be greater than zero, at least `minimum` (when given) and at most
    `maximum` (both in base units; `unit` names them in the message).
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
    amount = parse_quantity(value)
    if amount <= 0:
        raise ValueError(f"'{value}' must be greater than zero")
    if minimum is not None and amount < minimum:
        raise ValueError(f"'{value}' must be at least {minimum}{unit}")
    if amount > maximum:
        raise ValueError(f"'{value}' must be at most {maximum}{unit}")
    return value
