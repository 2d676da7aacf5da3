"""an emergency switch is lifted by two officers: the one who asks is kept with when and why

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("emergency_suspensions") as batch:
        batch.add_column(sa.Column("lift_requested_by", sa.String(80), nullable=True))
        batch.add_column(sa.Column("lift_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lift_request_reason", sa.String(400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("emergency_suspensions") as batch:
        batch.drop_column("lift_request_reason")
        batch.drop_column("lift_requested_at")
        batch.drop_column("lift_requested_by")
