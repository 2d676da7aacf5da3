"""The inquiry policy as data (PL-1…PL-3, VI(1)①, HQ-2): purposes × customer status × consent documents,
each branch's check methods (A/B/C/D), the HQ return option and the operating limits.

The bundled ``data/policy.json`` is the default; ``SHOKAI_POLICY_FILE`` replaces it. The policy is
validated when the gateway starts — a branch left with no check method, an HQ return option of
``none`` for a branch with neither A nor B, or operators barred from reading released responses where
a branch has no method B (nobody could read them), refuses to start — and
every new version is recorded in the database and the ledger (app/inquiry/service.py:
``register_policy_version``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.center.interface import PURPOSES as CENTER_PURPOSES
from app.center.interface import TRADE_INFO_PURPOSES
from app.strict_json import DuplicateKeys, loads_distinct

CheckMethod = Literal["A", "B", "C", "D"]
CustomerStatus = Literal["new", "existing"]
HqReturnOption = Literal["subject_list", "count_list", "none"]
# The branch's own daily list on which HQ's inquiries for it are returned (HQ-2: C or D at the branch).
HQ_RETURN_LIST_METHOD = {"subject_list": "C", "count_list": "D"}


class PolicyError(ValueError):
    """The policy document is not acceptable; the gateway does not start with it."""


class PurposeRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label_ja: str = Field(min_length=1, max_length=100)
    # customer status -> the consent documents this purpose accepts for it; a missing status is not allowed.
    documents: dict[CustomerStatus, list[str]]
    center_may_answer_no_trade_info: bool = False


class CheckMethods(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: list[CheckMethod]
    branches: dict[str, list[CheckMethod]] = Field(default_factory=dict)


class HqReturnOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: HqReturnOption
    branches: dict[str, HqReturnOption] = Field(default_factory=dict)


class ClosureRule(BaseModel):
    """A day the whole bank (or one branch) is closed besides weekends, holidays and 12/31–1/3."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    reason: str = Field(min_length=1, max_length=100)
    branch_code: str | None = None


class InquiryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=40)  # policy_versions.version
    documents: dict[str, str]
    purposes: dict[str, PurposeRule]
    check_methods: CheckMethods
    hq_return_option: HqReturnOptions
    operator_reads_after_release: bool = True
    self_inquiry: Literal["refuse", "flag"] = "refuse"
    approval_number_minutes: int = Field(default=30, ge=1, le=24 * 60)
    approval_number_max_failures: int = Field(default=5, ge=1, le=20)
    draft_lifetime_business_days: int = Field(default=1, ge=1, le=10)
    interactive_submit_wait_seconds: float = Field(default=3.0, ge=0, le=30)
    confirmer_totp_branches: list[str] = Field(default_factory=list)
    closures: list[ClosureRule] = Field(default_factory=list)
    # RT-1: a response's content is used this many days from its receipt; a purge then destroys it.
    response_use_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _consistent(self) -> InquiryPolicy:
        # A purpose the center does not know would be accepted at the terminal and then never be sendable.
        unknown_to_center = set(self.purposes) - set(CENTER_PURPOSES)
        if unknown_to_center:
            raise PolicyError(f"purposes {sorted(unknown_to_center)} are not in the center's interface")
        for code, rule in self.purposes.items():
            # What the center may answer is the center's contract (app/center/interface.py); the policy
            # states it for the reader and must not state it otherwise.
            if rule.center_may_answer_no_trade_info != (code in TRADE_INFO_PURPOSES):
                raise PolicyError(
                    f"purpose {code}: center_may_answer_no_trade_info must be "
                    f"{str(code in TRADE_INFO_PURPOSES).lower()}, as the center's interface says"
                )
            if not rule.documents or not any(rule.documents.values()):
                raise PolicyError(f"purpose {code} accepts no consent document")
            for docs in rule.documents.values():
                unknown = set(docs) - set(self.documents)
                if unknown:
                    raise PolicyError(f"purpose {code} names unknown documents {sorted(unknown)}")
        if not self.check_methods.default:
            raise PolicyError("the default check methods are empty: every branch needs at least one of A-D")
        for branch, methods in self.check_methods.branches.items():
            if not methods:
                raise PolicyError(f"branch {branch} has no check method (VI(1)①: at least one of A-D)")
        # HQ-2: a branch that gets no list back is covered by A (a confirmer approves before the request
        # leaves the branch) and/or B (HQ's answer is held for the branch's own confirmer,
        # app/hq/execution.py releasing_request). With neither it would go unchecked: refused.
        for branch in {*self.hq_return_option.branches, *self.check_methods.branches}:
            if self.hq_return_option_for(branch) == "none" and not {"A", "B"} & self.methods_for(branch):
                raise PolicyError(f"branch {branch}: HQ return option 'none' needs method A or B (HQ-2)")
        if self.hq_return_option.default == "none" and not {"A", "B"} & set(self.check_methods.default):
            raise PolicyError("default HQ return option 'none' needs method A or B (HQ-2)")
        # Without B a response is released at receipt and has no releasing confirmer (requirements.md,
        # method B): the operator is then its only reader, so barring operators would leave answers
        # nobody may see — refused here instead of discovered at the first inquiry.
        if not self.operator_reads_after_release:
            for branch in sorted({"*", *self.check_methods.branches}):
                if "B" not in self.methods_for(branch):
                    where = "the default check methods" if branch == "*" else f"branch {branch}"
                    raise PolicyError(
                        f"{where} omit method B, so nobody could read a response: "
                        "operator_reads_after_release must be true"
                    )
        # HQ's inquiries come back to the branch on its own daily list, so that list must exist there.
        for branch in {"*", *self.hq_return_option.branches, *self.check_methods.branches}:
            option = self.hq_return_option_for(branch)
            method = HQ_RETURN_LIST_METHOD.get(option)
            if method is not None and method not in self.methods_for(branch):
                where = "default" if branch == "*" else f"branch {branch}:"
                raise PolicyError(f"{where} HQ return option '{option}' needs method {method} (HQ-2)")
        return self

    def methods_for(self, branch_code: str) -> frozenset[str]:
        return frozenset(self.check_methods.branches.get(branch_code, self.check_methods.default))

    def hq_return_option_for(self, branch_code: str) -> str:
        return self.hq_return_option.branches.get(branch_code, self.hq_return_option.default)

    def totp_required_for(self, branch_code: str) -> bool:
        return branch_code in self.confirmer_totp_branches

    def canonical_json(self) -> str:
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def load_policy(path: Path | None = None) -> InquiryPolicy:
    """The policy from ``path`` or the bundled default; raises PolicyError when it is not acceptable."""
    if path is not None:
        text = path.read_text(encoding="utf-8")
    else:
        text = resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    try:
        # Duplicate keys are refused: with json's last-one-wins a second entry for a purpose or a branch
        # would silently replace the first, and the file would not say what runs.
        return InquiryPolicy.model_validate(loads_distinct(text))
    except DuplicateKeys as exc:
        raise PolicyError(f"the inquiry policy names {exc.keys} more than once in one object") from exc
    except PolicyError:
        raise
    except ValueError as exc:
        raise PolicyError(f"the inquiry policy is not valid: {exc}") from exc
