"""drop the unused reconciliation_center_entries table; record corrections of inquiry records (CC-1)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A reconciliation run stages the center's record in a TEMP table of its own connection
    # (app/reconciliation/service.py); nothing has written this permanent table since.
    op.drop_index("ix_reconciliation_center_entries_cid", table_name="reconciliation_center_entries")
    op.drop_index("ix_reconciliation_center_entries_key", table_name="reconciliation_center_entries")
    op.drop_table("reconciliation_center_entries")
    # CC-1: a correction of a sent inquiry's record, under the same two-person control as a cancellation.
    op.create_table(
        "inquiry_corrections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("corrected_by", sa.String(length=40), nullable=False),
        sa.Column("confirmer_id", sa.String(length=40), nullable=False),
        sa.Column("approval_method", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("at_center", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiries.id"], name=op.f("fk_inquiry_corrections_inquiry_id_inquiries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_corrections")),
        sa.UniqueConstraint("inquiry_id", name="uq_inquiry_corrections_inquiry_id"),
    )
    op.create_index(
        "ix_inquiry_corrections_branch_corrected_at",
        "inquiry_corrections",
        ["branch_code", "corrected_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_inquiry_corrections_branch_corrected_at", table_name="inquiry_corrections")
    op.drop_table("inquiry_corrections")
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
