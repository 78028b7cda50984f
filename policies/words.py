"""English words in refusals: "an accountant certificate", "an agency client"."""

from __future__ import annotations

__all__ = ["article"]


def article(word: str) -> str:
    """``word`` after its indefinite article, by its first letter's sound (vowel: "an")."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
