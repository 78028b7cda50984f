"""Registry text: which characters may reach a certificate subject, a PDF or a decision note.

Text typed by people (names, positions, localities, document numbers, notes) may hold only the
characters of :data:`REPERTOIRE`: the Latin and Cyrillic letters (with their precomposed
diacritics), digits, punctuation, currency and letterlike symbols people write in Kyrgyzstan, and
spaces. By construction it holds no character of the categories Cc (controls, C1 included), Cf
(format: bidirectional overrides such as U+202E, zero-width spaces such as U+200B, the BOM), Co
(private use), Cn (unassigned) or Cs (surrogates), no combining mark and no character that
Unicode normalisation would change: invisible or ambiguous characters cannot make one name look
like another in a certificate or a printed document, and accepted text is already in NFC
(:func:`normalise` applies NFC all the same, then collapses whitespace).

:func:`refused_character` is the rule; the HTTP edge's ``Text`` type and the CA's registry
checks both apply it, and the OpenAPI document states it as regular-expression character classes
built from the same set (:func:`character_class`), so the document and the checks agree.
Whitespace is Python's (``str.split``), the characters a value's whitespace is collapsed on.
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = [
    "LINE_BREAKS",
    "REFUSED_CATEGORIES",
    "REPERTOIRE",
    "character_class",
    "collapse",
    "describe",
    "normalise",
    "refused_character",
]

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Mn", "Mc", "Me"})

_BLOCKS = (
    (0x0020, 0x007E),  # ASCII letters, digits, punctuation, space
    (0x00A0, 0x00FF),  # Latin-1: no-break space, « », №-like signs, accented letters
    (0x0100, 0x02FF),  # Latin Extended-A and -B, IPA (ə), spacing modifiers (ʼ)
    (0x0400, 0x052F),  # Cyrillic and its supplement (ң ө ү)
    (0x1E00, 0x1EFF),  # Latin Extended Additional
    (0x2000, 0x200A),  # spaces
    (0x2010, 0x2027),  # dashes, quotation marks, bullets, ellipsis
    (0x202F, 0x205F),  # narrow no-break space, per mille, primes, ‹ ›, medium space
    (0x20A0, 0x20C0),  # currency signs (U+20C0 SOM SIGN)
    (0x2100, 0x214F),  # letterlike symbols (№, ™)
)


def _admitted(char: str) -> bool:
    return (
        unicodedata.category(char) not in REFUSED_CATEGORIES
        and unicodedata.combining(char) == 0
        and unicodedata.normalize("NFC", char) == char
    )


REPERTOIRE = frozenset(
    chr(code) for first, last in _BLOCKS for code in range(first, last + 1) if _admitted(chr(code))
)
# A note (free text over several lines) may also hold line breaks and tabs.
LINE_BREAKS = frozenset("\t\n\v\f\r")


def refused_character(value: str, *, line_breaks: bool = False) -> str | None:
    """The first character of ``value`` outside :data:`REPERTOIRE` (a note: or line breaks),
    or None."""
    for char in value:
        if char not in REPERTOIRE and not (line_breaks and char in LINE_BREAKS):
            return char
    return None


def normalise(value: str) -> str:
    """NFC, whitespace collapsed to single spaces, no leading or trailing space."""
    return collapse(unicodedata.normalize("NFC", value))


def collapse(value: str) -> str:
    return " ".join(value.split())


def describe(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a refused character, for a message."""
    name = "" if unicodedata.category(char) == "Cs" else unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


@functools.cache
def character_class(kind: str) -> str:
    """A regular-expression character class that Python's ``re`` and ECMA-262 read alike.

    ``"any"``: the characters a line may hold; ``"visible"``: those but whitespace; ``"space"``:
    the whitespace a line may hold; ``"note"``, ``"note-space"``: the same for a note.
    """
    chars: set[str] = set(REPERTOIRE)
    if kind.startswith("note"):
        chars |= LINE_BREAKS
    if kind in ("space", "note-space"):
        chars = {c for c in chars if c.isspace()}
    elif kind == "visible":
        chars = {c for c in chars if not c.isspace()}
    elif kind not in ("any", "note"):
        raise ValueError(f"no character class {kind!r}")
    codes = sorted(ord(c) for c in chars)
    spans: list[tuple[int, int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1] = (spans[-1][0], code)
        else:
            spans.append((code, code))
    return "[" + "".join(_span(a, b) for a, b in spans) + "]"


def _span(first: int, last: int) -> str:
    return _char(first) if first == last else f"{_char(first)}-{_char(last)}"


def _char(code: int) -> str:
    return f"\\u{code:04x}"  # every character of the repertoire is in the BMP
