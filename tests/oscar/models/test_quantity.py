from decimal import Decimal

import pytest

from oscar.models.quantity import parse_quantity, positive_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("0.5", Decimal("0.5")),
        ("500m", Decimal("0.5")),
        ("256Mi", Decimal(256 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity_values(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "1.2.3", "Mi", "1 Gi", "--1"])
def test_parse_quantity_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(("given", "kept"), [(1, "1"), (0.5, "0.5"), ("2", "2"), (" 1Gi ", "1Gi")])
def test_positive_quantity_accepts_numbers_and_strings(given: object, kept: str) -> None:
    assert positive_quantity(given) == kept


@pytest.mark.parametrize("given", ["0", "-1", "-500m", 0, True, None, [1]])
def test_positive_quantity_rejects(given: object) -> None:
    with pytest.raises(ValueError):
        positive_quantity(given)


def test_positive_quantity_empty_only_when_allowed() -> None:
    assert positive_quantity("", allow_empty=True) == ""
    with pytest.raises(ValueError):
        positive_quantity("")
