"""reconciliation runs against the center's inquiry record (RC-1, RC-2)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=True),
        sa.Column("schedule_key", sa.String(length=40), nullable=True),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure", sa.String(length=200), nullable=True),
        sa.Column("center_entries", sa.Integer(), nullable=False),
        sa.Column("gateway_entries", sa.Integer(), nullable=False),
        sa.Column("finding_counts", sa.JSON(), nullable=False),
        sa.Column("by_terminal", sa.JSON(), nullable=False),
        sa.Column("by_day", sa.JSON(), nullable=False),
        sa.Column("approval_registers", sa.JSON(), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
        sa.UniqueConstraint("schedule_key", name=op.f("uq_reconciliation_runs_schedule_key")),
    )
    op.create_index(op.f("ix_reconciliation_runs_state"), "reconciliation_runs", ["state"], unique=False)
    op.create_table(
        "reconciliation_findings",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("entry_kind", sa.String(length=16), nullable=True),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("center_inquiry_id", sa.String(length=64), nullable=True),
        sa.Column("inquiry_id", sa.String(length=36), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("business_date", sa.Date(), nullable=True),
        sa.Column("branch_code", sa.String(length=16), nullable=True),
        sa.Column("terminal_id", sa.String(length=40), nullable=True),
        sa.Column("operator_ref", sa.String(length=64), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_findings_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_findings")),
    )
    op.create_index(
        "ix_reconciliation_findings_run_kind",
        "reconciliation_findings",
        ["run_id", "kind", "id"],
        unique=False,
    )
    op.create_table(
        "reconciliation_alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=80), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_alerts_run_id_reconciliation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_alerts")),
    )
    op.create_index(
        op.f("ix_reconciliation_alerts_run_id"), "reconciliation_alerts", ["run_id"], unique=False
    )
    op.create_table(
        "reconciliation_center_entries",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("center_inquiry_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("branch_code", sa.String(length=16), nullable=False),
        sa.Column("terminal_id", sa.String(length=40), nullable=False),
        sa.Column("operator_ref", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("subject_index", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "position", name=op.f("pk_reconciliation_center_entries")),
    )
    op.create_index(
        "ix_reconciliation_center_entries_key",
        "reconciliation_center_entries",
        ["run_id", "idempotency_key"],
        unique=False,
    )
    op.create_index(
        "ix_reconciliation_center_entries_cid",
        "reconciliation_center_entries",
        ["run_id", "center_inquiry_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_center_entries_cid", table_name="reconciliation_center_entries")
    op.drop_index("ix_reconciliation_center_entries_key", table_name="reconciliation_center_entries")
    op.drop_table("reconciliation_center_entries")
    op.drop_index(op.f("ix_reconciliation_alerts_run_id"), table_name="reconciliation_alerts")
    op.drop_table("reconciliation_alerts")
    op.drop_index("ix_reconciliation_findings_run_kind", table_name="reconciliation_findings")
    op.drop_table("reconciliation_findings")
    op.drop_index(op.f("ix_reconciliation_runs_state"), table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
