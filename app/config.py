"""Settings for one Shokai instance (pydantic-settings, environment prefix ``SHOKAI_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOKAI_", extra="ignore")

    # Where the embedded default keeps its SQLite file and key file.
    data_dir: Path = Path(".shokai")
    # Empty means the embedded SQLite file inside data_dir.
    database_url: str = ""
    # Key material: a key file path, or the key file's JSON content in the environment (SHOKAI_KEYS).
    key_file: Path | None = None
    keys: str | None = None
    # A running gateway looks at the key file this often (a stat) before it uses a current key, so a
    # rotation by `shokai keys rotate` in another process is in use everywhere within this time (EN-2).
    key_file_check_seconds: float = Field(default=5.0, gt=0)

    # Sessions and tokens (AU-6, AU-9).
    session_idle_minutes: int = 10
    session_absolute_hours: int = 8
    service_token_minutes: int = 15
    token_issuer: str = "shokai"
    # Retired signing keys stay verifiable this long after rotation, which covers every token they signed.
    retired_signing_key_grace_hours: int = 9

    # Emergency switches (IR-1): lifting takes two officers at the time, so a request to lift that no
    # second officer has acted on within this many hours (a shift) lapses; the next call asks anew.
    emergency_lift_request_hours: int = Field(default=8, ge=1, le=168)

    # Login and passwords (AU-4, AU-5, AU-7, AU-9).
    lockout_threshold: int = 5
    password_max_age_days: int = 90
    password_min_length: int = 12
    password_history_depth: int = 10
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    # Audit ledger checkpoints (LG-2): every N events or T seconds, whichever comes first.
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: int = 300

    # The panel's cookie may drop Secure only for the loopback demo.
    cookie_secure: bool = True

    # Trust X-Forwarded-For from the TLS proxy in production; off for direct connections.
    trust_forwarded_for: bool = False

    # Retention (RT-2): deletion records are also written to this journal outside the database (empty means
    # data_dir/deletions.jsonl), from which a restored database re-applies them. The use period itself is
    # policy (InquiryPolicy.response_use_days): versioned, and every change audited.
    deletion_journal_path: Path | None = None

    @field_validator("deletion_journal_path", mode="before")
    @classmethod
    def _journal_path_or_default(cls, value: object) -> object:
        # SHOKAI_DELETION_JOURNAL_PATH= (empty) means the default; Path("") would be the working directory.
        return None if value == "" else value

    # The inquiry policy (purposes, check methods per branch, ...); empty means the bundled default.
    policy_file: Path | None = None

    # The center link (EN-3). Empty center_url mounts the bundled simulator in-process (embedded default).
    center_url: str = ""
    center_member_code: str = "M0001"
    center_connect_timeout_seconds: float = 3.0
    center_read_timeout_seconds: float = 10.0
    center_write_timeout_seconds: float = 5.0
    center_max_attempts: int = 3
    center_breaker_threshold: int = 5
    center_breaker_cooldown_seconds: float = 30.0
    center_tls_client_cert: Path | None = None
    center_tls_client_key: Path | None = None
    center_tls_ca_bundle: Path | None = None
    # EN-3: a center off this machine is reached over mutual TLS; switch off only where the center
    # prescribes another method (a dedicated line, its own VPN). https:// is required either way.
    center_mutual_tls_required: bool = True
    # Background sender of the outbox; tests drive it by hand.
    outbox_idle_seconds: float = 1.0
    # How long a sender owns a claimed outbox row. After a crash mid-delivery the row is retried once this
    # has passed. It must be at least twice the slowest center call (attempts × timeouts + backoff: 54.6 s
    # with the defaults), or a second sender could take a row whose call is still running; the gateway
    # refuses to start otherwise (app/inquiry/outbox.py::check_claim_lease).
    outbox_claim_lease_seconds: float = Field(default=120.0, gt=0)

    # Daily lists (DL-1): when the in-service schedule generates the previous day's lists (JST), and how
    # many earlier days it re-checks so late inquiries and cancellations get supplementary versions.
    lists_generate_at: str = "00:30"
    lists_recheck_days: int = Field(default=7, ge=0, le=62)
    lists_schedule_interval_seconds: float = Field(default=60.0, gt=0)

    # Reconciliation with the center's inquiry record (RC-1): the previous calendar month is reconciled
    # once on this day of the month after this time (JST); off for instances without a center record.
    reconcile_monthly_enabled: bool = True
    reconcile_monthly_day: int = Field(default=1, ge=1, le=28)
    reconcile_monthly_at: str = "02:00"
    reconcile_schedule_interval_seconds: float = Field(default=600.0, gt=0)

    # Anomaly analysis (LG-3) and the confirmer-usage report (AU-8): thresholds, all in JST.
    audit_night_start_hour: int = Field(default=20, ge=0, le=23)
    audit_night_end_hour: int = Field(default=7, ge=0, le=23)
    # Night or non-business-day events per user/terminal in the period that make a finding.
    audit_off_hours_min_events: int = Field(default=1, ge=1)
    audit_baseline_days: int = Field(default=28, ge=1, le=366)
    audit_outlier_sigma: float = Field(default=3.0, gt=0)
    audit_outlier_min_events: int = Field(default=10, ge=1)
    audit_no_trade_info_repeats: int = Field(default=3, ge=1)
    audit_late_view_days: int = Field(default=30, ge=1)
    audit_subject_operators: int = Field(default=2, ge=2)
    audit_quick_approval_seconds: int = Field(default=20, ge=0)
    audit_pair_min_approvals: int = Field(default=5, ge=1)
    audit_pair_share: float = Field(default=0.8, gt=0, le=1)
    audit_two_branch_minutes: int = Field(default=60, ge=1)
    # The daily monitoring run (heartbeat, yesterday's reports): when (JST) and how often the loop looks.
    monitoring_daily_at: str = "01:00"
    monitoring_interval_seconds: float = Field(default=300.0, gt=0)
    # Structured JSON log lines (request id, no personal data) instead of plain text.
    log_json: bool = True

    # Access governance (AC-2, AC-4): how long a request waits for approval and application, the
    # recertification rhythm and deadline, and how often the governance sweep looks.
    access_request_lapse_days: int = Field(default=5, ge=1, le=60)
    recertification_interval_days: int = Field(default=182, ge=1)
    recertification_deadline_days: int = Field(default=14, ge=1, le=90)
    governance_sweep_interval_seconds: float = Field(default=300.0, gt=0)

    # The largest request body any route accepts. The biggest real one (a purpose-policy table, a form)
    # is a few kilobytes; without a bound one request could make the gateway hold gigabytes in memory.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)

    log_level: str = "INFO"
    request_id_header: str = "X-Request-Id"
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=1000)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'shokai.db').resolve()}"

    def resolved_key_file(self) -> Path:
        return self.key_file if self.key_file is not None else self.data_dir / "keys.json"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")
