"""a branch keeps when it was closed: its lists are still due for the day it closed

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A branch closed before this has none: no lists after its closure day, as before.
    with op.batch_alter_table("branches") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("branches") as batch:
        batch.drop_column("closed_at")
