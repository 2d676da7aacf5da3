"""escalations are acknowledged with what was done, and name who raised them and whom they concern

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.add_column(sa.Column("acknowledgement_note", sa.String(length=400), nullable=True))
        batch.add_column(sa.Column("raised_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("concerns", sa.JSON(), nullable=True))
        batch.create_index("ix_escalations_acknowledged_at_created_at", ["acknowledged_at", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("escalations") as batch:
        batch.drop_index("ix_escalations_acknowledged_at_created_at")
        batch.drop_column("concerns")
        batch.drop_column("raised_by")
        batch.drop_column("acknowledgement_note")
