"""inquiries: sealed subjects and responses, approval numbers, outbox, idempotency

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:32:57.180990
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=400), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=40), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalations_branch_code"), ["branch_code"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("principal_id", sa.String(length=80), nullable=False),
        sa.Column("endpoint", sa.String(length=120), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "principal_id", "endpoint", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "inquiry_number_counters",
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("branch_code", "business_date", name=op.f("pk_inquiry_number_counters")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_policy_versions")),
    )
    op.create_table(
        "inquiries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("terminal_id", sa.String(length=40), nullable=True),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
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
        sa.Column("draft_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("approval_method", sa.String(length=32), nullable=True),
        sa.Column("approval_confirmer_id", sa.String(length=40), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approval_terminal_id", sa.String(length=40), nullable=True),
        sa.Column("center_inquiry_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("center_result_code", sa.String(length=40), nullable=True),
        sa.Column("response_state", sa.String(length=16), nullable=False),
        sa.Column("released_by", sa.String(length=40), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_check", sa.String(length=16), nullable=True),
        sa.Column("hq_request_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=40), nullable=True),
        sa.Column("cancel_confirmer_id", sa.String(length=40), nullable=True),
        sa.Column("cancel_reason", sa.String(length=400), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_code"], ["branches.code"], name=op.f("fk_inquiries_branch_code_branches")
        ),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_inquiries_operator_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiries")),
        sa.UniqueConstraint("number", name="uq_inquiries_number"),
    )
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inquiries_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_inquiries_business_date"), ["business_date"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_inquiries_center_inquiry_id"), ["center_inquiry_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_inquiries_operator_id"), ["operator_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inquiries_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_inquiries_subject_index"), ["subject_index"], unique=False)

    op.create_table(
        "approval_numbers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("issued_by", sa.String(length=40), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_terminal_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("number_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("draft_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiries.id"], name=op.f("fk_approval_numbers_inquiry_id_inquiries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_numbers")),
    )
    with op.batch_alter_table("approval_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_numbers_branch_code"), ["branch_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_approval_numbers_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_numbers_inquiry_id"), ["inquiry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_approval_numbers_state"), ["state"], unique=False)

    op.create_table(
        "center_outbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiries.id"], name=op.f("fk_center_outbox_inquiry_id_inquiries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_center_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_center_outbox_idempotency_key")),
    )
    with op.batch_alter_table("center_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_center_outbox_delivered_at"), ["delivered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_center_outbox_inquiry_id"), ["inquiry_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_center_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )

    op.create_table(
        "inquiry_responses",
        sa.Column("inquiry_id", sa.String(length=36), nullable=False),
        sa.Column("center_inquiry_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("kek_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiries.id"], name=op.f("fk_inquiry_responses_inquiry_id_inquiries")
        ),
        sa.PrimaryKeyConstraint("inquiry_id", name=op.f("pk_inquiry_responses")),
    )


def downgrade() -> None:
    op.drop_table("inquiry_responses")
    with op.batch_alter_table("center_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_center_outbox_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_center_outbox_inquiry_id"))
        batch_op.drop_index(batch_op.f("ix_center_outbox_delivered_at"))

    op.drop_table("center_outbox")
    with op.batch_alter_table("approval_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_numbers_state"))
        batch_op.drop_index(batch_op.f("ix_approval_numbers_inquiry_id"))
        batch_op.drop_index(batch_op.f("ix_approval_numbers_business_date"))
        batch_op.drop_index(batch_op.f("ix_approval_numbers_branch_code"))

    op.drop_table("approval_numbers")
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inquiries_subject_index"))
        batch_op.drop_index(batch_op.f("ix_inquiries_status"))
        batch_op.drop_index(batch_op.f("ix_inquiries_operator_id"))
        batch_op.drop_index(batch_op.f("ix_inquiries_center_inquiry_id"))
        batch_op.drop_index(batch_op.f("ix_inquiries_business_date"))
        batch_op.drop_index(batch_op.f("ix_inquiries_branch_code"))

    op.drop_table("inquiries")
    op.drop_table("policy_versions")
    op.drop_table("inquiry_number_counters")
    op.drop_table("idempotency_records")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalations_branch_code"))

    op.drop_table("escalations")
