"""Subject identity: normalisation (PL-4) and the Individual Number guard (マイナンバー).

Kana names are normalised to full-width katakana (NFKC folds half-width kana; hiragana is shifted
to katakana) so the same person is the same key for the blind index, the self-inquiry check and the
center. A 12-digit number with a valid 個人番号 check digit anywhere in a request is refused: the
gateway may not collect it (番号利用法).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from app.center.kana import fold_kana
from app.center.kana import is_katakana_name as is_katakana_key
from app.center.kana import normalise_kana as center_matching_form
from app.crypto.keyring import PSEUDONYM_PATTERN

_SPACES = re.compile(r"[\s\u3000]+")
# What people put between the groups of a number (after NFKC, which folds full-width digits, hyphen,
# tilde and low line, and the ideographic space): whitespace of any kind (a line break or a tab too, and
# runs of it — the stored text collapses them to one space), a hyphen, any Unicode dash or minus sign,
# the wave dash, the long-vowel mark a Japanese IME gives for "-" in kana mode (ー; half-width ｰ folds
# into it), the katakana middle dot, a tilde or a low line. Up to three of them between two digits. A
# dot, slash, colon or comma is not taken as a separator, so dates, times and amounts are not read as
# one number.
_GROUP_SEPARATOR = "[\\s\\-_~\u2010-\u2015\u2212\u2053\u301c\u3030\u30a0\u30fb\u30fc\ufe58\ufe63]"
# Twelve digits, optionally grouped so, not part of a longer number. The run is captured inside a
# lookahead so that every group boundary starts a candidate: in "03 1234 5678 9876 5432 1018" the
# number is the last three groups, and a plain match of the first twelve digits would have stepped
# over it. A run that is "+", a country code of one to three digits and a separator is a telephone
# number in international form (+81 90-1234-5678 has twelve digits, and one in ten of them would carry
# a valid check digit); an Individual Number is never written so. A bare "+" before the digits is not
# enough: "+123456789018" is still read as the number it holds.
_INTERNATIONAL_PHONE = rf"(?<=\+)[0-9]{{1,3}}{_GROUP_SEPARATOR}"
_TWELVE_DIGITS = rf"(?:[0-9]{_GROUP_SEPARATOR}{{0,3}}){{11}}[0-9]"
_DIGIT_RUN = re.compile(rf"(?<![0-9])(?!{_INTERNATIONAL_PHONE})(?=({_TWELVE_DIGITS})(?![0-9]))")
_SEPARATORS = re.compile(_GROUP_SEPARATOR)


def normalise_kana(value: str) -> str:
    """Full-width katakana, single spaces between name parts (the form stored and shown)."""
    return _SPACES.sub(" ", fold_kana(value)).strip()


def is_katakana_name(value: str) -> bool:
    """True when a name normalised by :func:`normalise_kana` is katakana only, apart from its spaces."""
    return is_katakana_key(value.replace(" ", ""))


def kana_key(value: str) -> str:
    """The comparison key: the center's matching form, so the blind index, the self-inquiry check and
    reconciliation against the center's record fold a name the same way."""
    return center_matching_form(value)


def normalise_text(value: str | None) -> str | None:
    if value is None:
        return None
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()
    return text or None


def my_number_check_digit(first_eleven: str) -> int:
    """The 個人番号 check digit for the first 11 digits (the ministry's published formula)."""
    total = 0
    for n in range(1, 12):
        p = int(first_eleven[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_my_number(digits: str) -> bool:
    return len(digits) == 12 and digits.isdigit() and my_number_check_digit(digits[:11]) == int(digits[11])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


# Kanji numerals written digit by digit, as a number is read out or written vertically (一二三四 五六七八
# 九〇一八). Only the ten digit characters: positional numerals (十, 百, 千) never spell a twelve-digit
# identifier, and folding them would turn amounts and addresses into digit runs.
_KANJI_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")


def _as_a_person_reads_it(text: str) -> str:
    """NFKC (full-width and circled digits, full-width hyphen and space), invisible format characters
    (Unicode Cf: zero-width space and joiners, direction marks) removed, and the decimal digits of
    other scripts (Arabic-Indic, Devanagari, …) and kanji digits read as 0–9: a number written so reads
    the same to a person."""
    if text.isascii():
        return text
    folded = unicodedata.normalize("NFKC", text).translate(_KANJI_DIGITS)
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch
        for ch in folded
        if unicodedata.category(ch) != "Cf"
    )


def contains_my_number(payload: Any) -> bool:
    """True when any string or number anywhere in ``payload`` holds a valid 12-digit Individual Number."""
    for text in _strings(payload):
        for match in _DIGIT_RUN.finditer(_as_a_person_reads_it(text)):
            if is_my_number(_SEPARATORS.sub("", match.group(1))):
                return True
    return False


# Identifiers the gateway issued itself, which a request may quote back (HQ executing a branch request).
ISSUED_ID_FIELDS = ("hq_request_id",)


# Where a request names a person by the gateway's pseudonym (an incident's affected subjects). Each
# value's hex digits hold twelve decimals with a valid check digit about once in a thousand; a value
# there that is not of the pseudonym's exact form is scanned like any other text.
PSEUDONYM_FIELDS = ("affected_subjects",)
_PSEUDONYM = re.compile(PSEUDONYM_PATTERN)


def _is_pseudonym(value: Any) -> bool:
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


def _is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


# Checked and dropped, never stored or sent, in any request's body (passwords are compared with their
# Argon2id hash, numbers with their keyed hash): a password that happens to hold twelve digits with a valid
# check digit must not leave its owner unable to approve, release or log in.
SECRET_FIELDS = frozenset(
    {
        "password",
        "confirmer_password",
        "confirmer_totp",
        "totp",
        "approval_number",
        "current_password",
        "new_password",
        "client_secret",
    }
)


def without_issued_ids(raw_body: Any) -> Any:
    """The request as a person typed it and the gateway keeps it: the gateway's own identifiers and
    pseudonyms and the secrets (``SECRET_FIELDS``, at any depth) left out of the PL-4 scan.

    A UUID's hex groups read as a valid 12-digit Individual Number in about 1 in 370 UUIDs, which made
    HQ unable to execute that share of branch requests. Only a canonical UUID is passed over, so the
    field cannot carry a number past the scan."""
    if isinstance(raw_body, list):
        return [without_issued_ids(item) for item in raw_body]
    if not isinstance(raw_body, dict):
        return raw_body
    return {
        k: [item for item in v if not _is_pseudonym(item)]
        if k in PSEUDONYM_FIELDS and isinstance(v, list)
        else without_issued_ids(v)
        for k, v in raw_body.items()
        if not (k in ISSUED_ID_FIELDS and _is_uuid(v)) and not (k in SECRET_FIELDS and isinstance(v, str))
    }


def typed_an_individual_number(raw_body: Any) -> bool:
    """PL-4 over a request's body as it came: what a person typed, neither the gateway's own identifiers
    nor the secrets."""
    return contains_my_number(without_issued_ids(raw_body))


def unless_my_number(typed: str | None, *, instead: str | None = None) -> str | None:
    """``typed`` to be kept as it came (a path, a header), or ``instead`` where it holds an Individual
    Number: the ledger is append-only, so what it records can never be taken out again (PL-4)."""
    if typed is None or not contains_my_number(typed):
        return typed
    return instead


# The validation error type of a free-text field holding an Individual Number; the error handler answers
# it as MY_NUMBER_FORBIDDEN (app/problems.py) and the panel as the same refusal.
MY_NUMBER_ERROR = "my_number_forbidden"


def _no_individual_number(value: str | None) -> str | None:
    if value is not None and contains_my_number(value):
        raise PydanticCustomError(MY_NUMBER_ERROR, "An Individual Number may not be entered here")
    return value


# Free text outside an inquiry's own body — a governance reason, a list-check note, an incident entry, a
# user's or branch's name — ends up in the append-only ledger or a register that is never rewritten, so
# an Individual Number typed into it could never be taken out again (番号利用法: it may not be collected
# at all). The inquiry endpoints scan their whole body in the service instead, where the refusal is
# recorded as the inquiry's own event.
# The optional form validates the whole union, so that a field's own length limit is still checked on the
# string first (``string_too_long``, which the panel explains) and the scan sees only text within it.
# The bidirectional embeddings, overrides and isolates: they reorder how the text around them is shown
# (a reason or a title that reads differently in a register, a CSV or the panel than it was stored).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _no_control_characters(value: str | None) -> str | None:
    """Line breaks and tabs are text; other control characters (ESC, C1) are not, and in a register's CSV
    export or a terminal they act instead of showing. Nor are the bidirectional controls."""
    if value is not None and any(
        (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r") or ch in _BIDI_CONTROLS for ch in value
    ):
        raise PydanticCustomError("control_character", "Control characters may not be entered here")
    return value


FreeText = Annotated[str, AfterValidator(_no_individual_number), AfterValidator(_no_control_characters)]


def _stated(value: str) -> str:
    """Spaces alone (half- or full-width) give no reason and say nothing was done; around the words they
    are dropped, as the panel drops them, so both store the same text. Invisible characters (a zero-width
    space, a joiner: Unicode format characters) alone say nothing either."""
    stated = value.strip()
    if not any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in stated):
        raise PydanticCustomError("blank", "Say it in words: spaces alone are not enough")
    return stated


# A reason or an account of what was done: required words, not just spaces (CC-1 "needs a reason").
StatedText = Annotated[FreeText, AfterValidator(_stated)]
# The same for an inquiry's own body, whose Individual Number scan is the service's (see above).
StatedInquiryText = Annotated[str, AfterValidator(_stated)]
OptionalFreeText = Annotated[
    str | None, AfterValidator(_no_individual_number), AfterValidator(_no_control_characters)
]
