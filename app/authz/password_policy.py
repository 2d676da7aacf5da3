"""Password policy AU-7 (II.5(2)): which rules a candidate password breaks.

:func:`password_violations` is pure: it takes the candidate, the owner's identifying data and, when
changing a password, the current password, and returns the names of the rules broken, in the order
of :data:`ALL_VIOLATIONS`. The reuse rule (:data:`REUSED`, "not one of the last
``history_depth``") needs the stored Argon2 hashes, so the caller checks it and appends the name.

The password is never echoed, logged, printed or put in a report: no return value, exception
message or log line from this module contains it or any part of it, and nothing here caches
password-bearing arguments (an ``lru_cache`` would keep them alive in memory).

Comparison form
    Every check except the character-class count works on the NFKC normal form, case-folded,
    with katakana folded to hiragana (so "ヤマダ", "ﾔﾏﾀﾞ" and "やまだ" compare equal). Full-width
    digits and letters therefore count as their ASCII forms.

Rules, in result order
    ``too_short``
        Fewer than ``min_length`` code points. The length is the smaller of the raw and the NFKC
        lengths, so a single compatibility character that expands (e.g. a ligature) cannot pad a
        short password past the limit.
    ``single_character_class``
        Fewer than ``min_character_classes`` of: ASCII lowercase, ASCII uppercase, digits, symbols
        (ASCII punctuation, spaces and other non-letters), non-ASCII letters (kana, kanji, ...).
        Counted on the NFKC form before case folding.
    ``common_password``
        The password, or the password with leetspeak undone (0→o, 1→l or 1→i, 3→e, 4→a, 5→s,
        7→t, @→a, $→s), with or without leading/trailing digits and symbols, is in the bundled
        list ``data/common_passwords.txt``; or it is one listed word repeated (optionally with
        digits/symbols between the copies); or any unit repeated three or more times; or it is made
        entirely of keyboard walks, alphabetical, numeric (0 follows 9) and kana (あいうえお…)
        sequences, and runs of one character, each piece at least 3 long ("qweasdzxc",
        "123456789012", "aaaaaaaaaaaa"). The
        walk test is also applied to the password with leading/trailing digits and symbols
        stripped when at least 4 characters remain ("qwerty!!2026").
    ``contains_user_id``
        The user ID (at least 3 characters) appears in the password, also after undoing leetspeak
        or dropping separators and symbols from both.
    ``contains_name``
        A token of any of the owner's names appears the same way. Names are split on whitespace
        (including the ideographic space U+3000), "・", "-", "," and "."; a token counts when it
        is at least 2 characters if it contains a non-ASCII letter (kanji/kana) and at least 3 if
        it is Latin. Single-kanji given names are therefore not checked.
    ``contains_birth_date``
        Checked on the digit runs of the password, after joining digits separated only by
        ``- / . _`` or spaces (so "1985-03-07" is the run "19850307"). A violation is any run
        containing yyyymmdd, ddmmyyyy, mmddyyyy, yymmdd, ddmmyy, mmddyy, the unpadded
        yyyy-m-d / m-d-yyyy / d-m-yyyy forms, or the Japanese era year + mmdd (昭和60年3月7日 →
        "600307"); or mmdd/ddmm appearing together with the 4-digit year anywhere in the
        password; or a digit run that is exactly mmdd or ddmm. The year alone, and mmdd inside a
        longer run without the year, do not count: a 4-digit substring of an arbitrary number
        matches some birthday too often to be useful.
    ``contains_phone``
        The phone's digits (everything else dropped) must not appear: neither the full digit
        string, nor its last 7 digits (so "+81 90-…" and "090-…" forms of one number match), nor
        its last 4 digits when they form a standalone 4-digit run. Numbers with fewer than 4
        digits are ignored.
    ``near_copy_of_current``
        ``current_password`` is given and non-empty, and either one contains the other or their
        Levenshtein distance is at most ``near_copy_max_distance`` (comparison form on both).
    ``reused_recent_password`` (:data:`REUSED`)
        Never returned here; the caller verifies the candidate against the last
        ``history_depth`` Argon2 hashes and appends this name last.

Messages
    :data:`VIOLATION_MESSAGES_JA` (for bank staff) and :data:`VIOLATION_MESSAGES_EN` are
    :meth:`str.format` templates whose placeholders are :class:`PasswordPolicy` field names
    (``{min_length}``, ``{min_character_classes}``, ``{history_depth}``,
    ``{near_copy_max_distance}``); :func:`violation_message` fills them from a policy. They never
    contain, and are never formatted with, the password.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Final, Literal

TOO_SHORT: Final = "too_short"
SINGLE_CHARACTER_CLASS: Final = "single_character_class"
COMMON_PASSWORD: Final = "common_password"
CONTAINS_USER_ID: Final = "contains_user_id"
CONTAINS_NAME: Final = "contains_name"
CONTAINS_BIRTH_DATE: Final = "contains_birth_date"
CONTAINS_PHONE: Final = "contains_phone"
NEAR_COPY_OF_CURRENT: Final = "near_copy_of_current"
REUSED: Final = "reused_recent_password"

_CLASS_COUNT: Final = 5  # lower, upper, digit, symbol, non-ASCII letter

ALL_VIOLATIONS: Final[tuple[str, ...]] = (
    TOO_SHORT,
    SINGLE_CHARACTER_CLASS,
    COMMON_PASSWORD,
    CONTAINS_USER_ID,
    CONTAINS_NAME,
    CONTAINS_BIRTH_DATE,
    CONTAINS_PHONE,
    NEAR_COPY_OF_CURRENT,
    REUSED,
)

VIOLATION_MESSAGES_JA: Final[dict[str, str]] = {
    TOO_SHORT: "パスワードは{min_length}文字以上にしてください。",
    SINGLE_CHARACTER_CLASS: (
        "英小文字・英大文字・数字・記号・かな漢字のうち、{min_character_classes}種類以上を組み合わせてください。"
    ),
    COMMON_PASSWORD: (
        "よく使われるパスワードや単語（数字や記号を前後に付けたもの・置き換えたものを含む）、"
        "キーボードの並び、同じ文字や連続した文字の繰り返しは使えません。"
    ),
    CONTAINS_USER_ID: "ユーザーIDを含むパスワードは使えません。",
    CONTAINS_NAME: "氏名（漢字・カナ・ローマ字）を含むパスワードは使えません。",
    CONTAINS_BIRTH_DATE: "生年月日を含むパスワードは使えません。",
    CONTAINS_PHONE: "電話番号を含むパスワードは使えません。",
    NEAR_COPY_OF_CURRENT: (
        "現在のパスワードと似すぎています（現在のパスワードを含む、または{near_copy_max_distance}文字以内の変更）。"
        "大きく異なるパスワードにしてください。"
    ),
    REUSED: "直近{history_depth}回以内に使ったパスワードは再利用できません。",
}

VIOLATION_MESSAGES_EN: Final[dict[str, str]] = {
    TOO_SHORT: "Use at least {min_length} characters.",
    SINGLE_CHARACTER_CLASS: (
        "Combine at least {min_character_classes} of: lowercase letters, uppercase letters, digits, "
        "symbols, kana/kanji."
    ),
    COMMON_PASSWORD: (
        "Common passwords and words (also with digits or symbols added or substituted), keyboard "
        "patterns, and repeated or sequential characters are not allowed."
    ),
    CONTAINS_USER_ID: "The password must not contain your user ID.",
    CONTAINS_NAME: "The password must not contain your name (kanji, kana or Latin letters).",
    CONTAINS_BIRTH_DATE: "The password must not contain your date of birth.",
    CONTAINS_PHONE: "The password must not contain your phone number.",
    NEAR_COPY_OF_CURRENT: (
        "The password is too similar to the current one (contains it, or differs by "
        "{near_copy_max_distance} characters or fewer). Choose a substantially different password."
    ),
    REUSED: "You cannot reuse any of your last {history_depth} passwords.",
}


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    min_character_classes: int = 2
    history_depth: int = 10  # used by the caller for the reuse check
    # Levenshtein distance to the current password at or below which it is a near copy
    near_copy_max_distance: int = 3

    def __post_init__(self) -> None:
        # A misconfigured policy must fail loudly at start-up rather than silently accept everything.
        if self.min_length < 1:
            raise ValueError("min_length must be at least 1")
        if not 1 <= self.min_character_classes <= _CLASS_COUNT:
            raise ValueError(f"min_character_classes must be between 1 and {_CLASS_COUNT}")
        if self.history_depth < 0:
            raise ValueError("history_depth must not be negative")
        if self.near_copy_max_distance < 0:
            raise ValueError("near_copy_max_distance must not be negative")


@dataclass(frozen=True)
class PasswordOwner:
    user_id: str
    names: tuple[str, ...] = ()  # e.g. ("山田 太郎", "ヤマダ タロウ", "Yamada Taro")
    birth_date: date | None = None
    phone: str | None = None


def password_violations(
    new_password: str,
    *,
    owner: PasswordOwner,
    policy: PasswordPolicy = PasswordPolicy(),
    current_password: str | None = None,
) -> list[str]:
    """Every rule the candidate breaks, by stable name, in a fixed order; [] when acceptable."""
    if not isinstance(new_password, str):
        # The type name only: repr() of the value would echo the password.
        raise TypeError("new_password must be str")
    if current_password is not None and not isinstance(current_password, str):
        raise TypeError("current_password must be str or None")

    normalised = unicodedata.normalize("NFKC", new_password)
    folded = _fold(new_password)
    violations: list[str] = []

    if min(len(new_password), len(normalised)) < policy.min_length:
        violations.append(TOO_SHORT)
    if len(_character_classes(normalised)) < policy.min_character_classes:
        violations.append(SINGLE_CHARACTER_CLASS)
    if _is_common(folded):
        violations.append(COMMON_PASSWORD)
    if _contains_any(folded, _needles([owner.user_id], latin_min=3, other_min=3)):
        violations.append(CONTAINS_USER_ID)
    if _contains_any(folded, _needles(_name_tokens(owner.names), latin_min=3, other_min=2)):
        violations.append(CONTAINS_NAME)
    runs = _digit_runs(normalised)
    if owner.birth_date is not None and _contains_birth_date(runs, owner.birth_date):
        violations.append(CONTAINS_BIRTH_DATE)
    if owner.phone and _contains_phone(runs, owner.phone):
        violations.append(CONTAINS_PHONE)
    if current_password and _is_near_copy(folded, _fold(current_password), policy.near_copy_max_distance):
        violations.append(NEAR_COPY_OF_CURRENT)
    return violations


def violation_message(
    name: str, *, policy: PasswordPolicy = PasswordPolicy(), lang: Literal["ja", "en"] = "ja"
) -> str:
    """The plain-language explanation of violation ``name`` with the policy's numbers filled in."""
    messages = VIOLATION_MESSAGES_JA if lang == "ja" else VIOLATION_MESSAGES_EN
    return messages[name].format(**dataclasses.asdict(policy))


# --- normalisation -------------------------------------------------------------------------------

# Both readings of "1" are tried because "p4ssw1rd" and "1etmein" are equally plausible.
_LEET_TABLES: Final = (
    MappingProxyType(str.maketrans("013457@$", "oleastas")),
    MappingProxyType(str.maketrans("013457@$", "oieastas")),
)

_DIGIT_SEPARATORS: Final = re.compile(r"(?<=[0-9])[-/._ ]+(?=[0-9])")
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_NAME_SEPARATORS: Final = re.compile(r"[\s・,.\-]+")


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # Names arrive in katakana but people type them in hiragana as often as not.
    return "".join(chr(ord(ch) - 0x60) if "ァ" <= ch <= "ヶ" else ch for ch in folded)


def _compact(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _character_classes(text: str) -> set[str]:
    classes: set[str] = set()
    for ch in text:
        if "a" <= ch <= "z":
            classes.add("lower")
        elif "A" <= ch <= "Z":
            classes.add("upper")
        elif ch.isdigit():
            classes.add("digit")
        elif not ch.isascii() and ch.isalpha():
            classes.add("non_ascii_letter")
        else:
            classes.add("symbol")
    return classes


# --- common passwords ----------------------------------------------------------------------------

# Affix enumeration is quadratic in the affix lengths; the cap keeps a pathological input bounded
# while still covering any realistic "word + digits/symbols" password.
_MAX_AFFIX: Final = 16
_MIN_WALK_PIECE: Final = 3

_KEYBOARD_SEQUENCES: Final = (
    "1234567890-=",
    "!@#$%^&*()_+",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "1qaz",
    "2wsx",
    "3edc",
    "4rfv",
    "5tgb",
    "6yhn",
    "7ujm",
    "8ik,",
    "9ol.",
    "0p;/",
    "!qaz",
    "@wsx",
    "#edc",
    "$rfv",
    "%tgb",
    "abcdefghijklmnopqrstuvwxyz",
    # Numeric sequences wrap (…890123…) because that is how people continue past 9.
    "01234567890123456789",
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん",
)


@functools.lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    resource = importlib.resources.files(__package__ or "app.authz").joinpath("data")
    text = resource.joinpath("common_passwords.txt").read_text(encoding="utf-8")
    entries = (line.strip() for line in text.splitlines())
    return frozenset(_fold(entry) for entry in entries if entry and not entry.startswith("#"))


@functools.lru_cache(maxsize=1)
def _walk_pieces() -> frozenset[str]:
    pieces: set[str] = set()
    for sequence in _KEYBOARD_SEQUENCES:
        for seq in (sequence, sequence[::-1]):
            for start in range(len(seq)):
                for end in range(start + _MIN_WALK_PIECE, len(seq) + 1):
                    pieces.add(seq[start:end])
    return frozenset(pieces)


def _is_common(folded: str) -> bool:
    words = _common_words()
    if any(_is_listed(form, words) for core in _affix_cores(folded) for form in _leet_forms(core)):
        return True
    if _repeat_count(folded) >= 3:
        return True
    stripped = _strip_non_letters(folded)
    return _is_walk(folded) or (len(stripped) >= 4 and _is_walk(stripped))


def _leet_forms(text: str) -> set[str]:
    return {text, *(text.translate(table) for table in _LEET_TABLES)}


def _affix_cores(folded: str) -> set[str]:
    """The password minus every leading and trailing run of non-letters it could be padded with.

    Every split point is tried, not just the maximal strip, because leetspeak digits sit on the
    boundary: in "$ecre7!!2026" the "7" belongs to the word, in "Password1234!" it would not.
    """
    n = len(folded)
    lead = next((i for i, ch in enumerate(folded) if ch.isalpha()), n)
    trail = next((i for i, ch in enumerate(reversed(folded)) if ch.isalpha()), n)
    prefixes = {*range(min(lead, _MAX_AFFIX) + 1), lead}
    suffixes = {*range(min(trail, _MAX_AFFIX) + 1), trail}
    return {folded[p : n - s] for p in prefixes for s in suffixes if p + s < n}


def _is_listed(form: str, words: frozenset[str]) -> bool:
    if form in words:
        return True
    if _repeat_count(form) >= 2 and form[: _period(form)] in words:
        return True
    # "neko2026neko", "sakura-sakura": one word repeated with padding between the copies.
    tokens = [token for token in re.split(r"[\W\d_]+", form) if token]
    if len(tokens) >= 2 and len(set(tokens)) == 1:
        token = tokens[0]
        return token in words or token[: _period(token)] in words
    return False


def _period(text: str) -> int:
    """Length of the shortest unit that ``text`` is a whole repetition of (``len(text)`` if none).

    A string is a rotation of itself by its smallest period, so the first re-occurrence in the
    doubled string finds it; ``str.find`` keeps this linear and in C for long inputs.
    """
    return (text + text).find(text, 1) if text else 0


def _repeat_count(text: str) -> int:
    period = _period(text)
    return len(text) // period if period else 0


def _strip_non_letters(text: str) -> str:
    start = next((i for i, ch in enumerate(text) if ch.isalpha()), len(text))
    end = len(text) - next((i for i, ch in enumerate(reversed(text)) if ch.isalpha()), len(text))
    return text[start:end]


def _is_walk(text: str) -> bool:
    """Whether ``text`` splits entirely into keyboard/sequence pieces or single-character runs."""
    n = len(text)
    if n < _MIN_WALK_PIECE:
        return False
    pieces = _walk_pieces()
    longest = max(len(seq) for seq in _KEYBOARD_SEQUENCES)
    reachable = [False] * (n + 1)
    reachable[0] = True
    for start in range(n):
        if not reachable[start]:
            continue
        run_end = start + 1
        while run_end < n and text[run_end] == text[start]:
            run_end += 1
        for end in range(start + _MIN_WALK_PIECE, run_end + 1):
            reachable[end] = True
        for end in range(start + _MIN_WALK_PIECE, min(n, start + longest) + 1):
            if text[start:end] in pieces:
                reachable[end] = True
    return reachable[n]


# --- personal data -------------------------------------------------------------------------------


def _name_tokens(names: Iterable[str]) -> list[str]:
    return [token for name in names for token in _NAME_SEPARATORS.split(_fold(name)) if token]


def _needles(values: Iterable[str], *, latin_min: int, other_min: int) -> set[str]:
    needles: set[str] = set()
    for value in values:
        folded = _fold(value)
        for needle in (folded, _compact(folded)):
            # Short Latin fragments ("li", "an") occur inside unrelated words; two kanji or kana
            # ("山田", "たろう") are already specific to the person.
            minimum = latin_min if needle.isascii() else other_min
            if len(needle) >= minimum:
                needles.add(needle)
    return needles


def _contains_any(folded: str, needles: set[str]) -> bool:
    """Whether a needle occurs in the password, as typed, with leetspeak undone, or without separators.

    ``needles`` already holds each value's compact form, filtered by the same minimum length, so an
    ID such as "a.b" cannot shrink to a two-letter needle here.

    The same leet table is applied to both sides so that digits genuinely in a user ID ("tanaka01")
    still match their leet-translated copy in the password ("t4n4k401").
    """
    for table in (None, *_LEET_TABLES):
        hay = folded if table is None else folded.translate(table)
        compact_hay = _compact(hay)
        for needle in needles:
            translated = needle if table is None else needle.translate(table)
            if translated in hay or translated in compact_hay:
                return True
    return False


def _digit_runs(normalised: str) -> list[str]:
    return _DIGIT_RUN.findall(_DIGIT_SEPARATORS.sub("", normalised))


def _era_year(born: date) -> int | None:
    """The year within the Japanese era (和暦), as written on forms and often reused in passwords."""
    eras = (  # first day of 令和, 平成, 昭和, 大正 and the offset from the Gregorian year
        (date(2019, 5, 1), 2018),
        (date(1989, 1, 8), 1988),
        (date(1926, 12, 25), 1925),
        (date(1912, 7, 30), 1911),
    )
    for first_day, offset in eras:
        if born >= first_day:
            return born.year - offset
    return None


def _contains_birth_date(runs: list[str], born: date) -> bool:
    yyyy = f"{born.year:04d}"
    yy, mm, dd = yyyy[2:], f"{born.month:02d}", f"{born.day:02d}"
    m, d = str(born.month), str(born.day)
    full_forms = {
        yyyy + mm + dd,
        dd + mm + yyyy,
        mm + dd + yyyy,
        yy + mm + dd,
        dd + mm + yy,
        mm + dd + yy,
        yyyy + m + d,
        m + d + yyyy,
        d + m + yyyy,
    }
    era_year = _era_year(born)
    if era_year is not None:
        full_forms.add(f"{era_year:02d}" + mm + dd)
    if any(form in run for run in runs for form in full_forms):
        return True
    # A birthday whose ddmm spells the year (2012-12-20 → "2012") must not turn "year alone" into a hit.
    month_day = {mm + dd, dd + mm} - {yyyy}
    if any(run in month_day for run in runs):
        return True
    has_year = any(yyyy in run for run in runs)
    return has_year and any(md in run for run in runs for md in month_day)


def _contains_phone(runs: list[str], phone: str) -> bool:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone) if "0" <= ch <= "9")
    if len(digits) < 4:
        return False
    tail = digits[-7:]
    if any(digits in run or tail in run for run in runs):
        return True
    return digits[-4:] in runs


# --- near copy -----------------------------------------------------------------------------------


def _is_near_copy(new: str, current: str, max_distance: int) -> bool:
    if new in current or current in new:
        return True
    return _levenshtein(new, current, limit=max_distance) <= max_distance


def _levenshtein(a: str, b: str, *, limit: int | None = None) -> int:
    """Edit distance; with ``limit``, any distance above it is reported as ``limit + 1``.

    With a limit only the diagonal band ``|i - j| <= limit`` is computed (cells outside it are
    necessarily above the limit), so comparing two long passwords costs O(len * limit), not O(len²).
    """
    if limit is None:
        limit = max(len(a), len(b))
    over = limit + 1
    if abs(len(a) - len(b)) > limit:
        return over
    previous = [min(j, over) for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        low, high = max(1, i - limit), min(len(b), i + limit)
        current = [over] * (len(b) + 1)
        current[0] = min(i, over)
        for j in range(low, high + 1):
            substitution = previous[j - 1] + (a[i - 1] != b[j - 1])
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution, over)
        if min(current[low - 1 : high + 1]) >= over:
            return over
        previous = current
    return previous[-1]
