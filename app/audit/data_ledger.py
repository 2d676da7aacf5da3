"""The data ledger, 個人情報管理台帳 (DG-1, guideline II.2(6)): every data set with its items, purpose,
storage and encryption, retention, owning department and the roles that can read it.

Generated, so it cannot drift: the items come from the live schema (``app.models_registry.metadata``),
the protection of each item from its column type and name, the readers from the permission matrix
(``app/authz/roles.py``), the storage from the configuration. What only people can say (purpose,
department, retention, which items are personal data) is the catalogue below; ``personal_data_gaps``
names every column that looks like personal data but is not declared there, and a test keeps it empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, LargeBinary, MetaData, Table

from app.authz.roles import PERMISSIONS
from app.config import Settings

# Column names that hold (or are derived from) a person's identity, credit record or contact data,
# name a member of staff (user ids, "who did it" columns ending in _by), or are free text where a
# person may be written about (notes, reasons, causes): each must be declared or explained.
PERSONAL_NAME = re.compile(
    r"(^|_)(name|kana|kanji|latin|birth|phone|address|postal|email|subjects?|sealed|ciphertext|"
    r"my_number|identity|user|operator|actor|principal|author|note|reason|cause|text|title|"
    r"prevention|outcome|findings|details|target)(_|$)|_by$"
)


@dataclass(frozen=True)
class DataSet:
    title: str
    purpose: str
    department: str
    retention: str
    # Columns holding personal data (of subjects or of staff).
    personal: dict[str, str] = field(default_factory=dict)
    # Columns whose names look personal but are not, with the reason.
    not_personal: dict[str, str] = field(default_factory=dict)
    # Permission actions that read this data set; the roles are looked up in the matrix.
    read_actions: tuple[str, ...] = ()


_SYSTEM = "システム部 (IT operations)"
_COMPLIANCE = "コンプライアンス部 (compliance)"
_BUSINESS = "個人信用情報管理者 / 営業店 (branch credit-information managers)"
_HR = "人事部・アクセス権管理 (access administration)"
_STAFF = "staff user id"
_FREE_TEXT = "free text written by staff (may mention a person)"
_CODE = "a code from a fixed list, not free text"
_KEY_MATERIAL = "key material (nonce / wrapped data key / key id) of the sealed item, not the data"
_SEALED_FREE_TEXT = "free text written by staff (may mention a person), sealed (app/crypto/sealed_text.py)"


def _key_material(name: str) -> dict[str, str]:
    """The three key-material columns beside a sealed text ``name``_sealed."""
    return {f"{name}_{part}": _KEY_MATERIAL for part in ("nonce", "wrapped_key", "kek_id")}


CATALOGUE: dict[str, DataSet] = {
    "inquiries": DataSet(
        "照会記録 (inquiries)",
        "Record of each credit-bureau inquiry for purpose limitation, two-person control and the daily lists",
        _BUSINESS,
        "Inquiry metadata and sealed subject: kept for the retention of the daily lists (RT-1)",
        personal={
            "released_by": _STAFF,
            "cancelled_by": _STAFF,
            "cancel_reason_sealed": _SEALED_FREE_TEXT,
            "release_note_sealed": _SEALED_FREE_TEXT,
            "subject_sealed": "subject identity (kana, kanji, birth date, phone, postal code, address)",
            "subject_index": "blind index of kana name + birth date",
            "subject_pseudonym": "keyed pseudonym of the subject (used in the ledger)",
            "consent_reference": "consent document number",
            "operator_id": "staff user id",
        },
        not_personal={
            "subject_nonce": _KEY_MATERIAL,
            "subject_wrapped_key": _KEY_MATERIAL,
            "subject_kek_id": _KEY_MATERIAL,
            **_key_material("cancel_reason"),
            **_key_material("release_note"),
        },
        # emergency.read: the held inquiries' metadata, for the security officers (app/inquiry/held.py).
        read_actions=("inquiry.read", "inquiry.read_subject", "emergency.read"),
    ),
    "inquiry_corrections": DataSet(
        "照会記録の訂正 (corrections of inquiry records)",
        "Who corrected which field of a sent inquiry's record, with whose approval and why (CC-1)",
        _BUSINESS,
        "With the inquiry it corrects",
        personal={
            "corrected_by": _STAFF,
            "reason_sealed": _SEALED_FREE_TEXT,
            "changes": "corrected purpose code and consent document reference (before and after)",
        },
        not_personal=_key_material("reason"),
        read_actions=("inquiry.read",),
    ),
    "inquiry_responses": DataSet(
        "回答情報 (center responses)",
        "The center's answer, sealed until a confirmer releases it (method B)",
        _BUSINESS,
        "Use period only (response_use_days from receipt, default 30), then crypto-shredded by a purge two "
        "security officers approve: wrapped data key deleted, ciphertext emptied (RT-1)",
        personal={"ciphertext": "the subject's credit record (sealed)"},
        not_personal={"nonce": _KEY_MATERIAL, "wrapped_key": _KEY_MATERIAL, "kek_id": _KEY_MATERIAL},
        read_actions=("inquiry.read_response",),
    ),
    "daily_lists": DataSet(
        "被照会者リスト・照会件数リスト (daily lists)",
        "Daily subject and count lists for the confirmer's reconciliation (methods C and D)",
        _BUSINESS,
        "Never deleted within the retention period (DL-2)",
        personal={
            "generated_by": _STAFF,
            "confirmed_by": _STAFF,
            "late_reason": _FREE_TEXT,
            "content_sealed": "list lines: subject kana name and birth date (sealed)",
        },
        not_personal={
            "supplement_reason": _CODE,
            "content_nonce": _KEY_MATERIAL,
            "content_wrapped_key": _KEY_MATERIAL,
            "content_kek_id": _KEY_MATERIAL,
            "content_sha256": "digest of the canonical content",
        },
        read_actions=("lists.read", "lists.read_subject"),
    ),
    "daily_list_lines": DataSet(
        "リスト明細の確認状態 (list line checks)",
        "Check state of each list line",
        _BUSINESS,
        "As daily lists",
        personal={
            "note_sealed": _SEALED_FREE_TEXT,
            "operator_id": "staff user id",
            "checked_by": "staff user id",
        },
        not_personal=_key_material("note"),
        read_actions=("lists.read",),
    ),
    "daily_list_sequences": DataSet("リスト連番", "Gapless list sequence numbers", _SYSTEM, "Permanent"),
    "approval_numbers": DataSet(
        "承認番号台帳 (approval-number register)",
        "Method A2: one-time approval numbers (hashed), daily balance",
        _BUSINESS,
        "As inquiries",
        personal={"issued_by": "staff user id"},
        not_personal={
            "void_reason": _CODE,
        },
        read_actions=("approval_register.read",),
    ),
    "inquiry_number_counters": DataSet(
        "照会番号採番", "Inquiry numbers per branch and day", _SYSTEM, "Permanent"
    ),
    "center_outbox": DataSet(
        "センター送信待ち (outbox)",
        "Durable delivery of inquiries and cancellations to the center (ER-3)",
        _SYSTEM,
        "Until delivered; kept with the inquiry",
        personal={"payload_sealed": "a cancellation's or correction's reason as staff wrote it, sealed"},
        not_personal=_key_material("payload"),
    ),
    "idempotency_records": DataSet(
        "冪等キー (idempotency records)",
        "Replaying the first answer to a retried POST (ER-2)",
        _SYSTEM,
        # Never expired: a retry after the record was gone would make a second inquiry. Each record holds
        # the caller, the key, a keyed fingerprint of the body and the made object's id, nothing more.
        "Kept: a retry, however late, must not make a second object; holds ids, no request content",
        personal={
            "principal_id": "staff user id or service client id",
        },
    ),
    "escalations": DataSet(
        "エスカレーション (escalations)",
        "Notifications to branch managers and HQ compliance (mismatch, overdue)",
        _COMPLIANCE,
        "As inquiries",
        personal={
            "remark_sealed": _SEALED_FREE_TEXT,
            "acknowledged_by": "staff user id",
            "acknowledgement_note_sealed": _SEALED_FREE_TEXT,
            "raised_by": "staff user id",
            "concerns": "staff user ids",
        },
        not_personal={
            "note": "what the system wrote (a line number, the day's figures, a center code)",
            **_key_material("remark"),
            **_key_material("acknowledgement_note"),
        },
        read_actions=("escalation.read",),
    ),
    "policy_versions": DataSet(
        "照会ポリシー版 (policy versions)",
        "Every purpose-policy version the gateway ran with (PL-3)",
        _COMPLIANCE,
        "Permanent",
        not_personal={"content": "the policy document (purposes, documents, methods)"},
    ),
    "branches": DataSet(
        "店舗 (branches)",
        "Branch directory",
        _HR,
        "Permanent",
        not_personal={"name": "branch name"},
        read_actions=("directory.read",),
    ),
    "terminals": DataSet(
        "端末 (terminals)", "Registered terminals (AU-2)", _HR, "Permanent", read_actions=("directory.read",)
    ),
    "users": DataSet(
        "利用者 (staff users)",
        "Identification and authentication of staff; self-inquiry and password checks (PL-5, AU-7)",
        _HR,
        "While employed, then per HR retention",
        personal={
            "name": "staff name",
            "name_kana": "staff name (kana)",
            "name_latin": "staff name (latin)",
            "birth_date": "staff birth date",
            "phone": "staff phone",
            "last_login_address": "network address of the last login",
            "id": "staff user id",
        },
        read_actions=("directory.read",),
    ),
    "user_roles": DataSet(
        "権限付与履歴 (role history)",
        "Roles held per branch, never deleted, only ended (AC-3, AC-6)",
        _HR,
        "Permanent",
        personal={"granted_by": _STAFF, "revoked_by": _STAFF, "user_id": "staff user id"},
        read_actions=("directory.read", "audit.forensics"),
    ),
    "password_history": DataSet(
        "パスワード履歴",
        "Last 10 password hashes (AU-7)",
        _SYSTEM,
        "Last 10 per user",
        personal={"user_id": "staff user id"},
    ),
    "login_throttle": DataSet(
        "ログイン失敗カウンタ",
        "Consecutive failures per keyed pseudonym of the attempted id (AU-5)",
        _SYSTEM,
        "Until unlock",
    ),
    "auth_sessions": DataSet(
        "セッション (sessions)",
        "Server-side sessions behind tokens (AU-6, AU-9)",
        _SYSTEM,
        "Absolute timeout, then kept as history",
        personal={"principal_id": "staff user id", "address": "network address of the session"},
        not_personal={
            "principal_kind": _CODE,
            "end_reason": _CODE,
        },
    ),
    "service_accounts": DataSet(
        "サービスアカウント",
        "Machine accounts for HQ batch and HR feed",
        _HR,
        "Permanent",
        not_personal={
            "note": "what the machine account is for",
        },
    ),
    "audit_events": DataSet(
        "監査ログ (audit ledger)",
        "Tamper-evident record of every access and operation (LG-1, LG-2)",
        _COMPLIANCE,
        "Audit retention period; append-only, never altered",
        personal={
            "actor_id": "staff user id",
            "address": "network address of the actor",
            "details": "event details: subject pseudonyms and ids, never names",
        },
        not_personal={
            "actor_roles": "role names of the actor, not the person",
            "outcome": _CODE,
        },
        read_actions=("audit.read",),
    ),
    "audit_chain_head": DataSet(
        "監査ログ連鎖ヘッド", "The chain head that serialises appends", _COMPLIANCE, "Permanent"
    ),
    "audit_checkpoints": DataSet(
        "監査ログ署名チェックポイント",
        "Signed checkpoints of the chain (LG-2)",
        _COMPLIANCE,
        "Permanent",
        read_actions=("audit.read",),
    ),
    "audit_report_runs": DataSet(
        "監査分析レポート (audit report runs)",
        "Stored anomaly and confirmer-usage runs with their acknowledgement (LG-3, AU-8)",
        _COMPLIANCE,
        "Audit retention period",
        personal={
            "generated_by": _STAFF,
            "acknowledgement_note_sealed": _SEALED_FREE_TEXT,
            "findings": "user ids, terminal ids and subject pseudonyms of findings (no names)",
            "acknowledged_by": "staff user id",
        },
        not_personal={
            "findings_count": "a number",
            **_key_material("acknowledgement_note"),
        },
        read_actions=("audit.anomalies.read", "audit.read"),
    ),
    "hq_requests": DataSet(
        "本部照会依頼 (HQ inquiry requests)",
        "A branch's request that HQ run an inquiry for it (HQ-1..HQ-4)",
        _BUSINESS,
        "As inquiries",
        personal={
            "executed_by": _STAFF,
            "subject_sealed": "subject identity (sealed like an inquiry's)",
            "subject_index": "blind index of kana name + birth date",
            "subject_pseudonym": "keyed pseudonym of the subject",
            "consent_reference": "consent document number",
            "operator_id": "staff user id",
        },
        not_personal={
            "subject_nonce": _KEY_MATERIAL,
            "subject_wrapped_key": _KEY_MATERIAL,
            "subject_kek_id": _KEY_MATERIAL,
        },
        read_actions=("inquiry.read",),
    ),
    "access_requests": DataSet(
        "アクセス権申請 (access requests)",
        "Request → approve → apply of access changes (AC-2)",
        _HR,
        "Permanent (with the access-rights register)",
        personal={
            "reason": _FREE_TEXT,
            "requested_by": _STAFF,
            "approved_by": _STAFF,
            "rejected_by": _STAFF,
            "decision_note": _FREE_TEXT,
            "applied_by": _STAFF,
            "user_id": "staff user id",
        },
        not_personal={
            "user_role_id": "id of a role-grant row",
            "secret_half_sealed": "half of a one-time password, sealed (a credential, not personal data)",
        },
        read_actions=("directory.read",),
    ),
    "totp_enrolments": DataSet(
        "二要素認証登録 (TOTP enrolments)",
        "Second factor of confirmers and administrators (AU-8, AC-5)",
        _SYSTEM,
        "While enrolled",
        personal={"user_id": "staff user id"},
        not_personal={"secret_sealed": "the shared TOTP secret, sealed (a credential, not personal data)"},
    ),
    "access_register": DataSet(
        "アクセス権管理台帳 (access-rights register)",
        "Every grant, change and revocation with who asked, approved and set it (AC-2)",
        _HR,
        "Permanent; append-only",
        personal={
            "user_id": _STAFF,
            "requested_by": _STAFF,
            "approved_by": _STAFF,
            "set_by": _STAFF,
            "reason": _FREE_TEXT,
        },
        not_personal={"user_role_id": "id of a role-grant row"},
        read_actions=("access.register.read", "audit.forensics"),
    ),
    "hr_events": DataSet(
        "人事異動連携 (HR events)",
        "Transfers, leave and departures from the HR feed that end or move access (AC-4)",
        _HR,
        "Permanent (with the access-rights register)",
        personal={"user_id": _STAFF, "received_from": "HR feed client id"},
        read_actions=("access.register.read",),
    ),
    "review_tasks": DataSet(
        "アクセス権見直しタスク (access review tasks)",
        "Follow-ups raised by HR events and recertification for access administrators (AC-4, AC-5)",
        _HR,
        "Permanent (with the access-rights register)",
        personal={"user_id": _STAFF, "closed_by": _STAFF, "outcome": _FREE_TEXT},
        read_actions=("access.review",),
    ),
    "recertification_campaigns": DataSet(
        "権限棚卸し (recertification campaigns)",
        "Periodic and event-driven recertification of every role (AC-5)",
        _HR,
        "Permanent",
        personal={"started_by": _STAFF, "note": _FREE_TEXT},
        not_personal={"reason": _CODE},
        read_actions=("access.recertification.read",),
    ),
    "recertification_items": DataSet(
        "権限棚卸し明細 (recertification items)",
        "One role to attest in a campaign, with the attester's decision (AC-5)",
        _HR,
        "Permanent (with its campaign)",
        personal={"user_id": _STAFF, "decided_by": _STAFF},
        not_personal={"user_role_id": "id of a role-grant row"},
        read_actions=("access.recertification.read",),
    ),
    "privileged_sessions": DataSet(
        "特権セッション (privileged sessions)",
        "Break-glass and administrator sessions with their reason and after-the-fact review (AC-7)",
        _COMPLIANCE,
        "Audit retention period",
        personal={
            "user_id": _STAFF,
            "reason": _FREE_TEXT,
            "reviewed_by": _STAFF,
            "review_note": _FREE_TEXT,
        },
        read_actions=("privileged.review",),
    ),
    "emergency_suspensions": DataSet(
        "緊急停止 (emergency suspensions)",
        "Suspensions of inquiries for a branch, a user or everyone, and their lifting (IR-1)",
        _COMPLIANCE,
        "Permanent",
        personal={
            "target": "branch code, or the suspended staff user id",
            "reason": _FREE_TEXT,
            "imposed_by": _STAFF,
            "lift_requested_by": _STAFF,
            "lift_request_reason": _FREE_TEXT,
            "lifted_by": _STAFF,
            "lift_reason": _FREE_TEXT,
        },
        read_actions=("emergency.read",),
    ),
    "incidents": DataSet(
        "漏えい等事案 (incidents)",
        "Incident records with the affected subjects and the reporting checklist (IR-2)",
        _COMPLIANCE,
        "Permanent",
        personal={
            "title_sealed": _SEALED_FREE_TEXT,
            "opened_by": _STAFF,
            "affected_subjects": "keyed pseudonyms of the affected subjects (never names)",
            "cause_sealed": _SEALED_FREE_TEXT,
            "recurrence_prevention_sealed": _SEALED_FREE_TEXT,
            "closed_by": _STAFF,
        },
        not_personal={
            **_key_material("title"),
            **_key_material("cause"),
            **_key_material("recurrence_prevention"),
        },
        read_actions=("incident.read",),
    ),
    "incident_entries": DataSet(
        "事案対応記録 (incident timeline)",
        "Timeline entries of an incident (IR-2)",
        _COMPLIANCE,
        "Permanent (with its incident)",
        personal={"author": _STAFF, "text_sealed": _SEALED_FREE_TEXT},
        not_personal=_key_material("text"),
        read_actions=("incident.read",),
    ),
    "retention_purge_requests": DataSet(
        "消去申請 (purge requests)",
        "A security officer's request to destroy the responses past their use period, and its approval "
        "(RT-1)",
        _COMPLIANCE,
        "Permanent",
        personal={"requested_by": _STAFF, "approved_by": _STAFF, "reason": _FREE_TEXT},
        read_actions=("retention.read",),
    ),
    "retention_deletions": DataSet(
        "消去記録 (deletion records)",
        "Each deletion: data set, range, count, method, operator, approver, time (RT-1); also kept in the "
        "deletion journal outside the database, re-applied after a restore (RT-2)",
        _COMPLIANCE,
        "Permanent",
        personal={"operator": _STAFF, "approver": _STAFF},
        read_actions=("retention.read",),
    ),
    "reconciliation_runs": DataSet(
        "センター突合実行 (reconciliation runs)",
        "Each reconciliation of the center's inquiry record against the gateway's (RC-1, RC-2)",
        _COMPLIANCE,
        "Audit retention period",
        personal={"requested_by": "staff user id or service client id"},
        read_actions=("reconciliation.center.read",),
    ),
    "reconciliation_findings": DataSet(
        "突合差異 (reconciliation findings)",
        "Each difference between the center's record and the gateway's (RC-1)",
        _COMPLIANCE,
        "With its reconciliation run",
        personal={"operator_ref": "staff reference"},
        not_personal={"reason": _CODE},
        read_actions=("reconciliation.center.read",),
    ),
    "reconciliation_alerts": DataSet(
        "突合アラート (reconciliation alerts)",
        "Alerts raised by a reconciliation run and their acknowledgement (RC-2)",
        _COMPLIANCE,
        "With its reconciliation run",
        personal={"acknowledged_by": _STAFF},
        read_actions=("reconciliation.center.read",),
    ),
    "hq_sign_offs": DataSet(
        "本部日次照合承認 (HQ daily sign-offs)",
        "HQ's sign-off of each business day's balance of requests and inquiries (HQ-3)",
        _BUSINESS,
        "As inquiries",
        personal={"signed_by": _STAFF},
        read_actions=("hq_reconciliation.read",),
    ),
    "job_runs": DataSet(
        "ジョブ実行記録 (job runs)",
        "Operating status: job runs with counts and output hashes (LG-4)",
        _SYSTEM,
        "Audit retention period",
        personal={
            "actor_id": "staff user id (or system) that ran the job",
        },
        not_personal={
            "outcome": _CODE,
        },
        read_actions=("audit.read",),
    ),
}


def _declared_personal(column: Column[Any], dataset: DataSet | None) -> bool:
    return dataset is not None and column.name in dataset.personal


def looks_personal(column: Column[Any]) -> bool:
    """A column that must be declared: personal-looking name, or marked ``info={"personal_data": True}``."""
    return bool(column.info.get("personal_data")) or bool(PERSONAL_NAME.search(column.name))


def personal_data_gaps(metadata: MetaData, catalogue: dict[str, DataSet] | None = None) -> list[str]:
    """``table.column`` for every personal-looking column the catalogue neither declares personal nor
    explains as not personal. Empty means the ledger is complete (DG-1)."""
    catalogue = CATALOGUE if catalogue is None else catalogue
    gaps = []
    for table in metadata.sorted_tables:
        dataset = catalogue.get(table.name)
        for column in table.columns:
            if not looks_personal(column):
                continue
            if dataset is None or (
                column.name not in dataset.personal and column.name not in dataset.not_personal
            ):
                gaps.append(f"{table.name}.{column.name}")
    return gaps


def _protection(table: Table, column: Column[Any], personal: bool) -> str:
    name = column.name
    if isinstance(column.type, LargeBinary) and personal:
        return "AES-256-GCM, own data key wrapped by the key-encryption key (EN-1)"
    if name.endswith("_index"):
        return "keyed HMAC-SHA256 blind index (not reversible without the key)"
    if name.endswith("_pseudonym") or (table.name == "login_throttle" and name == "login_key"):
        return "keyed HMAC pseudonym"
    if name.endswith("_hash") and name not in ("prev_hash",):
        return "one-way hash"
    return "stored in clear inside the access-controlled database"


def _readers(actions: Iterable[str]) -> tuple[list[str], list[str]]:
    roles: set[str] = set()
    scopes: set[str] = set()
    for action in actions:
        permission = PERMISSIONS.get(action)
        if permission is not None:
            roles |= permission.roles
            scopes |= permission.scopes
    return sorted(roles), sorted(scopes)


def build_data_ledger(metadata: MetaData, settings: Settings) -> dict[str, Any]:
    storage = (
        "SQLite database file in the instance directory (mode 0700), on the gateway host"
        if settings.is_sqlite
        else "PostgreSQL database (TLS between gateway and database, EN-3)"
    )
    datasets = []
    for table in sorted(metadata.sorted_tables, key=lambda t: t.name):
        dataset = CATALOGUE.get(table.name)
        items = []
        for column in table.columns:
            personal = _declared_personal(column, dataset) or bool(column.info.get("personal_data"))
            items.append(
                {
                    "column": column.name,
                    "type": str(column.type),
                    "personal": personal,
                    "description": dataset.personal.get(column.name) if dataset and personal else None,
                    "protection": _protection(table, column, personal),
                }
            )
        roles, scopes = _readers(dataset.read_actions if dataset else ())
        datasets.append(
            {
                "data_set": table.name,
                "title": dataset.title if dataset else table.name,
                "described": dataset is not None,
                "purpose": dataset.purpose if dataset else "not yet described in app/audit/data_ledger.py",
                "department": dataset.department if dataset else None,
                "retention": dataset.retention if dataset else None,
                "storage": storage,
                "holds_personal_data": any(item["personal"] for item in items),
                "items": items,
                "read_roles": roles,
                "read_scopes": scopes,
            }
        )
    return {
        "datasets": datasets,
        "undescribed": [d["data_set"] for d in datasets if not d["described"]],
        "personal_data_gaps": personal_data_gaps(metadata),
    }
