"""retention (RT-1, RT-2): purge requests, deletion records, responses found by when they were received

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_purge_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("data_set", sa.String(length=40), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=80), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deletion_id", sa.String(length=36), nullable=True),
        sa.Column("pending_slot", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_purge_requests")),
        sa.UniqueConstraint("pending_slot", name=op.f("uq_retention_purge_requests_pending_slot")),
    )
    op.create_index(
        op.f("ix_retention_purge_requests_status"), "retention_purge_requests", ["status"], unique=False
    )
    op.create_table(
        "retention_deletions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("data_set", sa.String(length=40), nullable=False),
        sa.Column("range_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("range_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("operator", sa.String(length=80), nullable=False),
        sa.Column("approver", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_deletions")),
    )
    op.create_index(op.f("ix_retention_deletions_at"), "retention_deletions", ["at"], unique=False)
    op.create_index(
        op.f("ix_inquiry_responses_received_at"), "inquiry_responses", ["received_at"], unique=False
    )
    op.add_column("inquiry_responses", sa.Column("deletion_id", sa.String(length=36), nullable=True))
    op.create_index(
        op.f("ix_inquiry_responses_deletion_id"), "inquiry_responses", ["deletion_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_inquiry_responses_deletion_id"), table_name="inquiry_responses")
    op.drop_column("inquiry_responses", "deletion_id")
    op.drop_index(op.f("ix_inquiry_responses_received_at"), table_name="inquiry_responses")
    op.drop_index(op.f("ix_retention_deletions_at"), table_name="retention_deletions")
    op.drop_table("retention_deletions")
    op.drop_index(op.f("ix_retention_purge_requests_status"), table_name="retention_purge_requests")
    op.drop_table("retention_purge_requests")
