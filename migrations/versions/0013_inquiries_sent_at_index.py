"""inquiries are found by when they were sent: the list schedule rechecks the days of late sends

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.create_index("ix_inquiries_sent_at", ["sent_at"])


def downgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.drop_index("ix_inquiries_sent_at")
