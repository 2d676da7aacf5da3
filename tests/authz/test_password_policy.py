"""AU-7 (II.5(2)) password policy: one test per rule, ordering, normalisation and non-disclosure."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.authz.password_policy import (
    ALL_VIOLATIONS,
    REUSED,
    VIOLATION_MESSAGES_EN,
    VIOLATION_MESSAGES_JA,
    PasswordOwner,
    PasswordPolicy,
    _common_words,
    _levenshtein,
    password_violations,
    violation_message,
)

OWNER = PasswordOwner(
    user_id="s.tanaka01",
    names=("山田 太郎", "ヤマダ タロウ", "Yamada Taro"),
    birth_date=date(1985, 3, 7),
    phone="090-8273-6451",
)
CURRENT = "Shiro-Inu!Yama#Kawa"
GOOD = "Kur0-Neko!Umi#Sora"


def check(password: str, *, policy: PasswordPolicy | None = None, current: str | None = CURRENT) -> list[str]:
    return password_violations(
        password, owner=OWNER, policy=policy or PasswordPolicy(), current_password=current
    )


def assert_good_passes() -> None:
    assert check(GOOD) == []


@pytest.mark.parametrize(
    "password",
    [GOOD, "Zx9#mQ!vR2&kLp", "青い空と七つの海を渡る!", "correct horse battery staple", "Hoshi-Zora_2K!ame"],
)
def test_strong_passwords_pass(password: str) -> None:
    assert check(password) == []


def test_too_short() -> None:
    assert check("Kur0-Neko!") == ["too_short"]
    assert check(GOOD, policy=PasswordPolicy(min_length=20)) == ["too_short"]
    # "ﬃ" expands to three letters under NFKC; it must not pad the length.
    assert check("Kur0-Neko!ﬃ") == ["too_short"]
    assert_good_passes()


@pytest.mark.parametrize(
    "password", ["kuronekoumisorayama", "KURONEKOUMISORAYAMA", "くろねこうみそらやまかわ"]
)
def test_single_character_class(password: str) -> None:
    assert check(password) == ["single_character_class"]
    assert_good_passes()


def test_character_class_threshold_follows_policy() -> None:
    # GOOD has lowercase, uppercase, digit and symbol: four of the five classes.
    assert check(GOOD, policy=PasswordPolicy(min_character_classes=4)) == []
    assert check(GOOD, policy=PasswordPolicy(min_character_classes=5)) == ["single_character_class"]
    assert check("Kur0-Neko!海と空", policy=PasswordPolicy(min_character_classes=5)) == []


@pytest.mark.parametrize(
    "password",
    [
        "Password1234!",
        "P@ssw0rd2026",
        "qwertyuiop123",
        "sakurasakura",
        "aaaaaaaaaaaa",
        "123456789012",
        "abcdefghijkl",
        "Welcome2026!!",
        "2026!!Welcome",
        "Sunsh1ne#2026",
        "Himitsu-2026!",
        "Ginkou2026!!",
        "SHOKAI-SHOKAI",
        "Dragon!Dragon!",
        "neko2026neko",
        "1qaz2wsx3edc",
        "Qwerty!!2026",
        "qweasdzxc!@#",
        "zyxwvutsrqpo",
        "Ab1!Ab1!Ab1!",
        "パスワード2026!!",
    ],
)
def test_common_password(password: str) -> None:
    assert "common_password" in check(password)
    assert_good_passes()


@pytest.mark.parametrize(
    "password", ["P@ssw0rd2026", "$ecre7!!2026", "@dmin123456!", "5unsh1ne!!2026", "D4isuk1!!99"]
)
def test_leetspeak_is_undone(password: str) -> None:
    assert "common_password" in check(password)


@pytest.mark.parametrize(
    "password", ["Kur0-Neko!s.tanaka01", "S.TANAKA01-Kur0!x", "Kur0-Neko!stanaka01", "Kur0!$.t4n4k401x"]
)
def test_contains_user_id(password: str) -> None:
    assert check(password) == ["contains_user_id"]
    assert_good_passes()


def test_short_user_id_is_not_checked() -> None:
    owner = PasswordOwner(user_id="ku")
    assert password_violations(GOOD, owner=owner) == []


@pytest.mark.parametrize(
    "password",
    [
        "Kur0-Neko!山田",
        "Kur0-Neko!太郎",
        "Kur0-Neko!タロウ",
        "Kur0-Neko!たろう",
        "Kur0-Neko!ﾀﾛｳ",
        "Kur0-Neko!YAMADA",
        "Kur0-Neko!t4r0",
    ],
)
def test_contains_name(password: str) -> None:
    assert check(password) == ["contains_name"]
    assert_good_passes()


def test_name_token_minimum_lengths() -> None:
    # One kanji and two Latin letters occur inside too many unrelated passwords to reject them.
    owner = PasswordOwner(user_id="x", names=("李 聡", "Li Satoshi"))
    assert password_violations("Kur0-Neko!李聡Li", owner=owner) == []
    assert password_violations("Kur0-Neko!Satoshi", owner=owner) == ["contains_name"]


@pytest.mark.parametrize(
    "password",
    [
        "Kur0-Neko!19850307",
        "Kur0-Neko!1985-03-07",
        "Kur0-Neko!1985/3/7",
        "Kur0-Neko!07031985",
        "Kur0-Neko!03071985",
        "Kur0-Neko!850307",
        "Kur0-Neko!600307",  # 昭和60年3月7日
        "Kur0-Neko!0307",
        "Kur0-Neko!0703",
        "1985Kur0-Neko!0307",
    ],
)
def test_contains_birth_date(password: str) -> None:
    assert check(password) == ["contains_birth_date"]
    assert_good_passes()


@pytest.mark.parametrize("password", ["Kur0-Neko!1985", "Kur0-Neko!403079", "Kur0-Neko!0308"])
def test_birth_date_near_misses_are_allowed(password: str) -> None:
    assert check(password) == []


@pytest.mark.parametrize(
    "password",
    [
        "Kur0-Neko!09082736451",
        "Kur0-Neko!090-8273-6451",
        "Kur0-Neko!+81-90-8273-6451",
        "Kur0-Neko!2736451",
        "Kur0-Neko!6451",
    ],
)
def test_contains_phone(password: str) -> None:
    assert check(password) == ["contains_phone"]
    assert_good_passes()


def test_phone_last_four_only_counts_as_a_standalone_run() -> None:
    assert check("Kur0-Neko!64519") == []


@pytest.mark.parametrize(
    "current",
    [
        GOOD,
        "kur0-neko!umi#sora",  # case only
        "Kur0-Neko!Umi#Zora",  # one substitution
        "Kur1-Nexo!Umi#Sorb",  # three substitutions
        "Kur0-Neko!Umi",  # contained in the new one
        "Kur0-Neko!Umi#Sora#2026",  # contains the new one
    ],
)
def test_near_copy_of_current(current: str) -> None:
    assert check(GOOD, current=current) == ["near_copy_of_current"]
    assert_good_passes()


def test_near_copy_threshold_follows_policy() -> None:
    four_edits = "Kur1-Nexo!Umi#Sxrb"
    assert _levenshtein(GOOD, four_edits) == 4
    assert check(GOOD, current=four_edits) == []
    assert check(GOOD, current=four_edits, policy=PasswordPolicy(near_copy_max_distance=4)) == [
        "near_copy_of_current"
    ]


def test_no_current_password_means_no_near_copy_check() -> None:
    assert check(GOOD, current=None) == []
    assert check(GOOD, current="") == []


def test_levenshtein() -> None:
    assert _levenshtein("kitten", "sitting") == 3
    assert _levenshtein("", "abc") == 3
    assert _levenshtein("abc", "abc") == 0
    assert _levenshtein("kitten", "sitting", limit=1) == 2
    assert _levenshtein("a" * 50, "b" * 60, limit=3) == 4


def test_all_violations_in_fixed_order() -> None:
    # A contrived owner whose every identifier is made of the same digits lets one password break
    # all eight rules at once.
    owner = PasswordOwner(
        user_id="850307", names=("Tanaka 19850307",), birth_date=date(1985, 3, 7), phone="0120-985-0307"
    )
    violations = password_violations(
        "12345619850307",
        owner=owner,
        policy=PasswordPolicy(min_length=20),
        current_password="12345619850308",
    )
    assert violations == list(ALL_VIOLATIONS[:-1])


def test_several_violations_keep_the_fixed_order() -> None:
    assert check("山田0307", current=None) == ["too_short", "contains_name", "contains_birth_date"]
    assert check("password", current="password1") == [
        "too_short",
        "single_character_class",
        "common_password",
        "near_copy_of_current",
    ]


def test_nfkc_full_width_input() -> None:
    assert check("Ｋｕｒ０－Ｎｅｋｏ！Ｕｍｉ＃Ｓｏｒａ") == []
    assert check("Kur0-Neko!１９８５０３０７") == ["contains_birth_date"]
    assert check("Kur0-Neko!６４５１") == ["contains_phone"]
    assert check("ＰＡＳＳＷＯＲＤ１２３４") == ["common_password"]
    assert check("Kur0-Neko!ｓ．ｔａｎａｋａ０１") == ["contains_user_id"]
    full_width_owner = PasswordOwner(user_id="ｓ．ｔａｎａｋａ０１", phone="０９０－８２７３－６４５１")
    assert password_violations("Kur0-Neko!s.tanaka01", owner=full_width_owner) == ["contains_user_id"]
    assert password_violations("Kur0-Neko!6451", owner=full_width_owner) == ["contains_phone"]


def test_constants() -> None:
    assert len(ALL_VIOLATIONS) == 9
    assert len(set(ALL_VIOLATIONS)) == 9
    assert ALL_VIOLATIONS[-1] == REUSED == "reused_recent_password"
    assert set(VIOLATION_MESSAGES_JA) == set(ALL_VIOLATIONS)
    assert set(VIOLATION_MESSAGES_EN) == set(ALL_VIOLATIONS)


def test_messages_fill_in_the_policy() -> None:
    assert violation_message("too_short") == "パスワードは12文字以上にしてください。"
    assert "16文字以上" in violation_message("too_short", policy=PasswordPolicy(min_length=16))
    assert "last 5 passwords" in violation_message(REUSED, policy=PasswordPolicy(history_depth=5), lang="en")
    for name in ALL_VIOLATIONS:
        for lang in ("ja", "en"):
            message = violation_message(name, lang=lang)
            assert message and "{" not in message


def test_bundled_list() -> None:
    words = _common_words()
    assert _common_words() is words
    assert len(words) >= 300
    assert all(word == word.lower() for word in words)
    for expected in (
        "password",
        "welcome",
        "dragon",
        "monkey",
        "sunshine",
        "qwerty",
        "asdfgh",
        "1qaz2wsx",
        "sakura",
        "tokyo",
        "nihon",
        "ginkou",
        "himitsu",
        "daisuki",
        "shokai",
        "bank",
        "ginko",
        "credit",
    ):
        assert expected in words


SECRET_SAMPLES = [
    "Password1234!",
    "Kur0-Neko!19850307",
    "Kur0-Neko!s.tanaka01",
    "Kur0-Neko!Umi#Sora",
    "短い",
    "aaaaaaaaaaaa",
]


@pytest.mark.parametrize("password", SECRET_SAMPLES)
def test_results_and_messages_never_contain_the_password(password: str) -> None:
    violations = check(password, current=password + "x")
    assert violations
    for name in violations:
        assert password not in name
        for lang in ("ja", "en"):
            assert password not in violation_message(name, lang=lang)
    assert password not in repr(violations)


@pytest.mark.parametrize("password", SECRET_SAMPLES)
def test_exceptions_never_contain_the_password(password: str) -> None:
    with pytest.raises(TypeError) as excinfo:
        password_violations(password.encode(), owner=OWNER)  # type: ignore[arg-type]
    assert password not in str(excinfo.value) and password not in repr(excinfo.value)
    with pytest.raises(TypeError) as excinfo:
        password_violations(GOOD, owner=OWNER, current_password=password.encode())  # type: ignore[arg-type]
    assert password not in str(excinfo.value) and GOOD not in str(excinfo.value)


def test_invalid_policy_is_rejected() -> None:
    for bad in (
        {"min_length": 0},
        {"min_character_classes": 0},
        {"min_character_classes": 6},
        {"history_depth": -1},
        {"near_copy_max_distance": -1},
    ):
        with pytest.raises(ValueError):
            PasswordPolicy(**bad)


@settings(max_examples=300, deadline=None)
@given(password=st.text(max_size=40), current=st.one_of(st.none(), st.text(max_size=40)))
def test_any_input_gives_known_names_in_order(password: str, current: str | None) -> None:
    violations = password_violations(password, owner=OWNER, current_password=current)
    order = [ALL_VIOLATIONS.index(name) for name in violations]
    assert order == sorted(set(order))
    assert REUSED not in violations
