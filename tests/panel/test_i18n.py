"""The panel's two message catalogues say the same things (no page falls back to a raw key)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import app
from app.errors import DomainError
from app.inquiry.models import InquiryFlag
from app.inquiry.policy import load_policy
from app.panel.i18n import CATALOGUES, error_message, translator


def test_japanese_and_english_catalogues_have_the_same_keys() -> None:
    assert set(CATALOGUES["ja"]) == set(CATALOGUES["en"])


def test_every_purpose_and_document_of_the_policy_has_a_label_in_both_languages() -> None:
    policy = load_policy()
    for language in ("ja", "en"):
        t = translator(language)
        for code in policy.purposes:
            assert t(f"purpose.{code}") != f"purpose.{code}"
        for code in policy.documents:
            assert t(f"document.{code}") != f"document.{code}"
    assert translator("ja")("purpose.new_credit") == policy.purposes["new_credit"].label_ja


def test_every_inquiry_flag_has_a_label_in_both_languages() -> None:
    # A flag without one would show staff its raw key (flag.withdrawn_under_switch) beside the status.
    for language in ("ja", "en"):
        t = translator(language)
        for flag in InquiryFlag:
            assert t(f"flag.{flag.value}") != f"flag.{flag.value}", (language, flag)


def test_refusal_codes_the_panel_shows_are_explained_and_unknown_codes_get_a_plain_sentence() -> None:
    shown = (
        "COUNT_MISMATCH",
        "LATE_REASON_REQUIRED",
        "REAUTH_FAILED",
        "SAME_PERSON",
        "CSRF_TOKEN_INVALID",
        # Opening a held response (method B) from the inquiry page.
        "RESPONSE_HELD",
    )
    for code in shown:
        assert error_message("ja", code) != error_message("ja", "NO_SUCH_CODE")
    assert error_message("ja", "NO_SUCH_CODE") == "操作できませんでした。"
    assert error_message("en", "COUNT_MISMATCH").startswith("Responses in hand")


def every_refusal_code() -> set[str]:
    """The stable code of every refusal class the gateway defines, wherever it lives."""
    codes = set()
    for module_info in pkgutil.walk_packages(app.__path__, "app."):
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, DomainError)
                and value.__module__ == module.__name__
            ):
                codes.add(value.code)
    return codes


def test_every_refusal_code_has_its_own_message_in_both_languages() -> None:
    """A refusal the panel passes on names what happened and what to do, never the generic sentence:
    23 codes (an HQ count mismatch, a lapsed access request, a closed session…) had none."""
    codes = every_refusal_code()
    assert {"COUNT_MISMATCH", "HQ_COUNT_MISMATCH", "DAY_NOT_OVER", "SESSION_EXPIRED"} <= codes
    for language in CATALOGUES:
        generic = error_message(language, "NO_SUCH_CODE")
        unexplained = sorted(code for code in codes if error_message(language, code) == generic)
        assert unexplained == [], language
