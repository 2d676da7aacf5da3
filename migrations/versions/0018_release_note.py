"""the releasing confirmer's note is kept with the release, sealed (EN-1), match or mismatch

Before, a note given with a matching document check was accepted and dropped; a mismatch's went only
to its escalation. Nothing stored needs sealing: the columns start empty.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.add_column(sa.Column("release_note_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("release_note_nonce", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("release_note_wrapped_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("release_note_kek_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        for part in ("sealed", "nonce", "wrapped_key", "kek_id"):
            batch.drop_column(f"release_note_{part}")
