"""policies.money: the one som/tyiyn formatter and parser, integers only."""

from __future__ import annotations

import pytest

from policies.money import MAX_AMOUNT, parse_som, som, som_grouped


@pytest.mark.parametrize(
    ("tyiyn", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (12345, "123.45"),
        (-12345, "-123.45"),
        (-5, "-0.05"),
        (100, "1.00"),
    ],
)
def test_som(tyiyn: int, text: str) -> None:
    assert som(tyiyn) == text


@pytest.mark.parametrize(
    ("tyiyn", "text"), [(151000, "1 510,00"), (-12345, "-123,45"), (100_000_000, "1 000 000,00")]
)
def test_som_grouped(tyiyn: int, text: str) -> None:
    assert som_grouped(tyiyn) == text


@pytest.mark.parametrize(
    ("text", "tyiyn"), [("1510", 151000), ("1510.5", 151050), ("1510.05", 151005), ("0.01", 1)]
)
def test_parse_strict(text: str, tyiyn: int) -> None:
    assert parse_som(text) == tyiyn
    assert parse_som(som(tyiyn)) == tyiyn


@pytest.mark.parametrize(
    ("text", "tyiyn"),
    [("1 510,00", 151000), ("99,5", 9950), (" 12.30 ", 1230), ("1\u00a0000", 100000)],
)
def test_parse_lenient(text: str, tyiyn: int) -> None:
    assert parse_som(text, lenient=True) == tyiyn


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("1,50", "is not an amount"),  # a comma only when lenient
        ("1 510", "is not an amount"),
        ("-5", "is not an amount"),
        ("1e3", "is not an amount"),
        ("NaN", "is not an amount"),
        ("1.234", "is not an amount"),
        ("0", "must be positive"),
        ("0.00", "must be positive"),
    ],
)
def test_parse_strict_refuses(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_som(text)


def test_parse_refuses_above_the_maximum() -> None:
    assert parse_som("99999999999.99") == 9_999_999_999_999
    assert parse_som(som(MAX_AMOUNT), lenient=True) == MAX_AMOUNT
    with pytest.raises(ValueError, match="implausibly large"):
        parse_som(som(MAX_AMOUNT + 1), lenient=True)
