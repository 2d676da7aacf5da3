"""daily lists

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:12:18.134313
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_list_sequences",
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch_code", "kind", name=op.f("pk_daily_list_sequences")),
    )
    op.create_table(
        "daily_lists",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supersedes", sa.String(length=36), nullable=True),
        sa.Column("supplement_reason", sa.String(length=40), nullable=True),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.String(length=80), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("content_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("content_wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("content_kek_id", sa.String(length=40), nullable=False),
        sa.Column("no_inquiries", sa.Boolean(), nullable=False),
        sa.Column("inquiries_total", sa.Integer(), nullable=False),
        sa.Column("responses_delivered", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("confirmed_by", sa.String(length=40), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("late_reason", sa.String(length=400), nullable=True),
        sa.Column("responses_in_hand", sa.Integer(), nullable=True),
        sa.Column("attested_no_inquiries", sa.Boolean(), nullable=False),
        sa.Column("overdue_escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["branch_code"], ["branches.code"], name=op.f("fk_daily_lists_branch_code_branches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_lists")),
        sa.UniqueConstraint(
            "branch_code", "business_date", "kind", "version", name="uq_daily_lists_day_version"
        ),
        sa.UniqueConstraint(
            "branch_code", "kind", "sequence", "version", name="uq_daily_lists_sequence_version"
        ),
    )
    with op.batch_alter_table("daily_lists", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_lists_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_daily_lists_business_date"), ["business_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_daily_lists_state"), ["state"], unique=False)

    op.create_table(
        "daily_list_lines",
        sa.Column("list_id", sa.String(length=36), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("check", sa.String(length=20), nullable=True),
        sa.Column("checked_by", sa.String(length=40), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=400), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"], ["daily_lists.id"], name=op.f("fk_daily_list_lines_list_id_daily_lists")
        ),
        sa.PrimaryKeyConstraint("list_id", "line_no", name=op.f("pk_daily_list_lines")),
    )
    with op.batch_alter_table("daily_list_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_list_lines_inquiry_id"), ["inquiry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daily_list_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_list_lines_inquiry_id"))

    op.drop_table("daily_list_lines")
    with op.batch_alter_table("daily_lists", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_lists_state"))
        batch_op.drop_index(batch_op.f("ix_daily_lists_business_date"))
        batch_op.drop_index(batch_op.f("ix_daily_lists_branch_code"))

    op.drop_table("daily_lists")
    op.drop_table("daily_list_sequences")
