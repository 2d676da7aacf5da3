"""Demo data for the embedded default: HQ, two branches, their terminals, a user for every role.

Everything here is synthetic: names are invented, birth dates and phone numbers are made up.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from app.audit.ledger import Actor
from app.authz import directory
from app.authz.password_policy import PasswordOwner, password_violations
from app.context import AppContext
from app.governance import rights

DEMO_ACTOR = Actor(id="cli:demo", roles=("system",))

BRANCHES = (("000", "本部", True), ("001", "新宿支店", False), ("002", "梅田支店", False))


@dataclass(frozen=True)
class DemoUser:
    id: str
    name: str
    name_kana: str
    roles: tuple[tuple[str, str | None], ...]
    birth_date: date
    phone: str


DEMO_USERS = (
    DemoUser(
        "op001", "佐藤 花子", "サトウ ハナコ", (("operator", "001"),), date(1990, 4, 12), "03-5550-0101"
    ),
    DemoUser(
        "cf001", "鈴木 一郎", "スズキ イチロウ", (("confirmer", "001"),), date(1982, 7, 3), "03-5550-0102"
    ),
    DemoUser(
        "cf001b", "高橋 美咲", "タカハシ ミサキ", (("confirmer", "001"),), date(1987, 1, 22), "03-5550-0103"
    ),
    DemoUser(
        "bm001", "田中 誠", "タナカ マコト", (("branch_manager", "001"),), date(1975, 11, 9), "03-5550-0104"
    ),
    DemoUser(
        "op002", "伊藤 健太", "イトウ ケンタ", (("operator", "002"),), date(1993, 2, 17), "06-5550-0201"
    ),
    DemoUser(
        "cf002", "渡辺 由美", "ワタナベ ユミ", (("confirmer", "002"),), date(1984, 9, 30), "06-5550-0202"
    ),
    DemoUser(
        "cf002b", "山本 翔", "ヤマモト ショウ", (("confirmer", "002"),), date(1989, 6, 5), "06-5550-0203"
    ),
    DemoUser(
        "bm002",
        "中村 恵子",
        "ナカムラ ケイコ",
        (("branch_manager", "002"),),
        date(1972, 3, 14),
        "06-5550-0204",
    ),
    DemoUser(
        "hqop", "小林 大輔", "コバヤシ ダイスケ", (("hq_operator", None),), date(1985, 12, 1), "03-5550-0001"
    ),
    DemoUser(
        "hqcf", "加藤 直子", "カトウ ナオコ", (("hq_confirmer", None),), date(1980, 8, 8), "03-5550-0002"
    ),
    DemoUser("auditor", "吉田 修", "ヨシダ オサム", (("auditor", None),), date(1970, 5, 25), "03-5550-0003"),
    DemoUser(
        "accadmin",
        "山田 明美",
        "ヤマダ アケミ",
        (("access_admin", None),),
        date(1978, 10, 19),
        "03-5550-0004",
    ),
    DemoUser(
        "accappr",
        "佐々木 亮",
        "ササキ リョウ",
        (("access_approver", None),),
        date(1976, 4, 2),
        "03-5550-0005",
    ),
    DemoUser(
        "secoff",
        "松本 剛",
        "マツモト ツヨシ",
        (("security_officer", None),),
        date(1974, 1, 28),
        "03-5550-0006",
    ),
)

SERVICE_ACCOUNTS = (
    ("hq-batch", ["lists:generate", "lists:read", "reconcile:run", "audit:read"], "HQ batch jobs"),
    ("hr-feed", ["hr:events"], "HR system feed"),
)


def generate_password(owner: PasswordOwner) -> str:
    """A random password that passes the policy (AU-7), so demo users need no change at first login."""
    alphabet = string.ascii_letters + string.digits
    while True:
        core = "".join(secrets.choice(alphabet) for _ in range(14))
        candidate = f"{core[:7]}-{core[7:]}"
        if not password_violations(candidate, owner=owner):
            return candidate


@dataclass
class DemoCredentials:
    terminals: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    service_accounts: list[dict[str, Any]] = field(default_factory=list)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(
            json.dumps(
                {"terminals": self.terminals, "users": self.users, "service_accounts": self.service_accounts},
                ensure_ascii=False,
                indent=2,
            ),
            encoding="utf-8",
        )


# The demo bank's branches were open long before its gateway came: the list schedule looks back at
# their past days as it would for a bank that has just installed the gateway on its running branches.
DEMO_BANK_OPENED = datetime(2000, 4, 1, tzinfo=UTC)


async def seed_demo(ctx: AppContext) -> DemoCredentials:
    """Create the demo directory in one transaction, recorded in the ledger like any other change."""
    credentials = DemoCredentials()
    async with ctx.db.session() as session:
        for code, name, is_hq in BRANCHES:
            await directory.create_branch(
                session,
                ctx=ctx,
                actor=DEMO_ACTOR,
                code=code,
                name=name,
                is_hq=is_hq,
                opened_at=DEMO_BANK_OPENED,
            )
        await session.flush()
        for code, _name, is_hq in BRANCHES:
            prefix = "HQ" if is_hq else code
            for number in (1, 2):
                terminal_id = f"T{prefix}-{number:02d}"
                registered = await directory.register_terminal(
                    session,
                    ctx=ctx,
                    actor=DEMO_ACTOR,
                    terminal_id=terminal_id,
                    branch_code=code,
                    description=f"demo terminal {number}",
                )
                credentials.terminals.append({"id": terminal_id, "branch_code": code, "key": registered.key})
        await session.flush()
        for user in DEMO_USERS:
            owner = PasswordOwner(
                user_id=user.id,
                names=(user.name, user.name_kana),
                birth_date=user.birth_date,
                phone=user.phone,
            )
            password = generate_password(owner)
            await directory.create_user(
                session,
                ctx=ctx,
                actor=DEMO_ACTOR,
                user_id=user.id,
                name=user.name,
                name_kana=user.name_kana,
                password=password,
                birth_date=user.birth_date,
                phone=user.phone,
                must_change_password=False,
            )
            await session.flush()
            branch_codes: set[str] = set()
            for role, branch_code in user.roles:
                # The bootstrap path: the first directory has no approver yet (later grants need requests).
                grant = await rights.bootstrap_grant(
                    session, ctx=ctx, actor=DEMO_ACTOR, user_id=user.id, role=role, branch_code=branch_code
                )
                if grant.branch_code:
                    branch_codes.add(grant.branch_code)
            credentials.users.append(
                {
                    "id": user.id,
                    "password": password,
                    "name": user.name,
                    "roles": [role for role, _ in user.roles],
                    "branch_codes": sorted(branch_codes),
                }
            )
        for client_id, scopes, description in SERVICE_ACCOUNTS:
            _account, secret = await directory.create_service_account(
                session,
                ctx=ctx,
                actor=DEMO_ACTOR,
                client_id=client_id,
                scopes=scopes,
                description=description,
            )
            credentials.service_accounts.append(
                {"client_id": client_id, "client_secret": secret, "scopes": scopes}
            )
        await session.commit()
    return credentials
