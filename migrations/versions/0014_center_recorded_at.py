"""the center's time of record: reconciliation counts each side of a day by when the center recorded it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.add_column(sa.Column("center_recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_inquiries_center_recorded_at", ["center_recorded_at"])
    with op.batch_alter_table("center_outbox") as batch:
        batch.add_column(sa.Column("center_recorded_at", sa.DateTime(timezone=True), nullable=True))
    # What is already there: the center's received_at where its answer is still kept, else when the
    # gateway stored the answer; a delivered message's delivery time (none for one never sent).
    op.execute(
        "UPDATE inquiries SET center_recorded_at = COALESCE("
        "(SELECT received_at FROM inquiry_responses WHERE inquiry_responses.inquiry_id = inquiries.id), sent_at"
        ") WHERE sent_at IS NOT NULL"
    )
    op.execute(
        "UPDATE center_outbox SET center_recorded_at = delivered_at WHERE delivered_at IS NOT NULL "
        "AND (last_error IS NULL OR last_error <> 'GATEWAY_NOT_SENDABLE')"
    )


def downgrade() -> None:
    with op.batch_alter_table("center_outbox") as batch:
        batch.drop_column("center_recorded_at")
    with op.batch_alter_table("inquiries") as batch:
        batch.drop_index("ix_inquiries_center_recorded_at")
        batch.drop_column("center_recorded_at")
