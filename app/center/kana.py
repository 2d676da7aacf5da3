"""Kana normalisation shared by the center's subject matching and anyone comparing its records (PL-4, RC-1).

The center matches a subject on the kana name and the birth date. Terminals send kana in every shape
(half-width, hiragana, with or without the space between surname and given name), so both sides fold
them to one key: NFKC (half-width → full-width katakana), hiragana → katakana, whitespace and the
middle dot removed.
"""

from __future__ import annotations

import re
import unicodedata

# Hiragana ぁ (U+3041) … ゖ (U+3096) sit exactly 0x60 below their katakana; ゝゞ map to ヽヾ likewise.
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in [*range(0x3041, 0x3097), 0x309D, 0x309E]}
_HIRAGANA = re.compile("[\u3041-\u3096\u309d\u309e]")
_KATAKANA_NAME = re.compile(r"^[\u30A1-\u30FA\u30FB\u30FC\u30FD\u30FE]+$")


# The spacing voiced and semi-voiced marks (゛゜), which older IMEs and hand-keyed forms put after a kana,
# as their combining forms: NFKC then composes "カ゛" into "ガ" as it does half-width "ｶﾞ". (NFKC alone
# turns ゛ into a space and a combining mark, and the name would be refused as not kana.) A mark after a
# kana that has no voiced form stays a combining mark, and the name is still refused.
_SPACING_MARKS = str.maketrans({"\u309b": "\u3099", "\u309c": "\u309a"})


def fold_kana(text: str) -> str:
    """NFKC (half-width → full-width katakana) and hiragana → katakana; spaces as they were."""
    if "\u309b" in text or "\u309c" in text:
        text = text.translate(_SPACING_MARKS)
    folded = unicodedata.normalize("NFKC", text)
    # str.translate looks every character up in a dict: only names that hold hiragana need it (a
    # million-entry reconciliation normalises a million names, nearly all katakana already).
    if _HIRAGANA.search(folded):
        folded = folded.translate(_HIRAGANA_TO_KATAKANA)
    return folded


def normalise_kana(text: str) -> str:
    """The matching form of a kana name: full-width katakana, no spaces, no middle dot.

    The middle dot (・, half-width ･) is what many terminals put between surname and given name instead
    of a space; as a separator it says nothing of who the person is."""
    # str.split() splits on exactly the characters str.isspace() is true for, in C.
    return "".join(fold_kana(text).split()).replace("・", "")


def is_katakana_name(normalised: str) -> bool:
    """True when an already normalised name is made of katakana only (no kanji, latin or digits)."""
    return bool(_KATAKANA_NAME.match(normalised))
