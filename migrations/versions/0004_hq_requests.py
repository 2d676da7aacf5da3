"""HQ inquiry requests from branches, their return options and HQ's daily balance (HQ-1..HQ-4)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hq_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("terminal_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("customer_status", sa.String(length=16), nullable=False),
        sa.Column("subject_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("subject_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("subject_wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("subject_kek_id", sa.String(length=40), nullable=False),
        sa.Column("subject_index", sa.String(length=64), nullable=False),
        sa.Column("subject_pseudonym", sa.String(length=64), nullable=False),
        sa.Column("consent_type", sa.String(length=40), nullable=False),
        sa.Column("consent_reference", sa.String(length=80), nullable=False),
        sa.Column("consent_obtained_on", sa.Date(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("return_option", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approval_method", sa.String(length=32), nullable=True),
        sa.Column("approval_confirmer_id", sa.String(length=40), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=True),
        sa.Column("executed_by", sa.String(length=40), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_business_date", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_code"], ["branches.code"], name=op.f("fk_hq_requests_branch_code_branches")
        ),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_hq_requests_operator_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hq_requests")),
        sa.UniqueConstraint("inquiry_id", name="uq_hq_requests_inquiry_id"),
    )
    with op.batch_alter_table("hq_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hq_requests_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_hq_requests_business_date"), ["business_date"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_hq_requests_executed_business_date"), ["executed_business_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_hq_requests_operator_id"), ["operator_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hq_requests_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_hq_requests_subject_index"), ["subject_index"], unique=False)

    op.create_table(
        "hq_sign_offs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("signed_by", sa.String(length=40), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hq_executed", sa.Integer(), nullable=False),
        sa.Column("branch_requests_executed", sa.Integer(), nullable=False),
        sa.Column("own_initiative", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_hq_sign_offs")),
    )
    # The database itself refuses a second execution of one request, whatever the race (HQ-1).
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_inquiries_hq_request_id", ["hq_request_id"])


def downgrade() -> None:
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inquiries_hq_request_id", type_="unique")
    op.drop_table("hq_sign_offs")
    with op.batch_alter_table("hq_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hq_requests_subject_index"))
        batch_op.drop_index(batch_op.f("ix_hq_requests_status"))
        batch_op.drop_index(batch_op.f("ix_hq_requests_operator_id"))
        batch_op.drop_index(batch_op.f("ix_hq_requests_executed_business_date"))
        batch_op.drop_index(batch_op.f("ix_hq_requests_business_date"))
        batch_op.drop_index(batch_op.f("ix_hq_requests_branch_code"))

    op.drop_table("hq_requests")
