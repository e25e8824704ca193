"""Normalising Japanese text for search and sorting.

Staff type names in hiragana, katakana or half-width katakana, with or without spaces;
all of them must find the same person. NFKC folds half-width katakana and full-width
Latin letters and digits; katakana is then mapped to hiragana.
"""
from __future__ import annotations

import re
import unicodedata

_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}
_SPACES = re.compile(r"[\s\u3000]+")
_NON_DIGITS = re.compile(r"\D+")


def fold(text: str | None) -> str:
    """Width-, kana- and case-insensitive form of text, without spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_KATAKANA_TO_HIRAGANA).lower()
    return _SPACES.sub("", text)


def fold_words(text: str | None) -> list[str]:
    """The folded words of text (split on any space, full-width included)."""
    if not text:
        return []
    text = unicodedata.normalize("NFKC", text)
    return [fold(word) for word in _SPACES.split(text) if word.strip()]


def digits(text: str | None) -> str:
    """Only the digits of text (full-width digits included): phone numbers, postal codes."""
    if not text:
        return ""
    return _NON_DIGITS.sub("", unicodedata.normalize("NFKC", text))


def clean(text: str | None) -> str:
    """Trim and NFKC-normalise a single-line value typed by a user, keeping kanji as typed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()


def tidy(text: str | None) -> str:
    """Spaces tidied, every character kept as typed (full-width brackets and all): for
    titles and names of things, where NFKC would change what staff wrote."""
    return " ".join((text or "").split())


def is_kana(text: str) -> bool:
    """True when text has only kana (hiragana/katakana), long-vowel marks and spaces."""
    folded = fold(text)
    return bool(folded) and all(
        "\u3041" <= ch <= "\u3096" or ch in "ーゝゞ・" for ch in folded
    )
