"""Money as integer tyiyn (1 som = 100 tyiyn): the one formatter and the one parser. No floats.

- :func:`som` writes an amount for people and protocols: ``-12345`` → ``"-123.45"``.
- :func:`som_grouped` writes it as Kyrgyz and Russian documents do: ``151000`` → ``"1 510,00"``.
- :func:`parse_som` reads ``"1510"`` or ``"1510.50"``; with ``lenient=True`` also what people and
  banks write (``"1 510,00"``, ``"99,5"``). Signs, exponents, more than two decimals, zero and
  amounts above :data:`MAX_AMOUNT` are refused with a :class:`ValueError` saying why.
"""

from __future__ import annotations

import re

__all__ = ["MAX_AMOUNT", "SOM_PATTERN", "TYIYN_PER_SOM", "parse_som", "som", "som_grouped"]

TYIYN_PER_SOM = 100
MAX_AMOUNT = 10**13  # tyiyn: 100 billion som, far above any real payment; guards overflow

_STRICT = re.compile(r"([0-9]{1,11})(?:\.([0-9]{1,2}))?")
# An amount in som as the API takes it, a JSON Schema pattern: what :func:`parse_som` accepts,
# more than zero, written without leading zeros.
SOM_PATTERN = r"^(?:[1-9][0-9]{0,10}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"
_LENIENT = re.compile(r"([0-9]{1,3}(?:[ \u00a0\u202f][0-9]{3})+|[0-9]+)(?:[.,]([0-9]{1,2}))?")


def som(tyiyn: int) -> str:
    """Tyiyn as som with two decimals: ``-12345`` → ``"-123.45"``."""
    sign = "-" if tyiyn < 0 else ""
    whole, rest = divmod(abs(tyiyn), TYIYN_PER_SOM)
    return f"{sign}{whole}.{rest:02d}"


def som_grouped(tyiyn: int) -> str:
    """Tyiyn as som, thousands spaced, a decimal comma: ``151000`` → ``"1 510,00"``."""
    sign = "-" if tyiyn < 0 else ""
    whole, rest = divmod(abs(tyiyn), TYIYN_PER_SOM)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d}"


def parse_som(text: str, *, lenient: bool = False) -> int:
    """``"123.45"`` som → ``12345`` tyiyn (positive, two decimals at most); else ValueError."""
    value = text.strip() if lenient else text
    match = (_LENIENT if lenient else _STRICT).fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not an amount in som, like 1510 or 1510.50 (two decimals at most)"
        )
    whole = int(re.sub(r"[^0-9]", "", match.group(1)))
    tyiyn = whole * TYIYN_PER_SOM + int((match.group(2) or "0").ljust(2, "0"))
    if tyiyn <= 0:
        raise ValueError("an amount must be positive")
    if tyiyn > MAX_AMOUNT:
        raise ValueError(f"{value!r} is implausibly large")
    return tyiyn
