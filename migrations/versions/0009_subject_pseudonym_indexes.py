"""index the subject pseudonym of inquiries and HQ requests (AC-6 subject access, LG-3 shared subjects)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An auditor's subject-access query looks inquiries and HQ requests up by pseudonym; without an
    # index each lookup read the whole table. The inquiry index also carries the business date and the
    # operator, so the anomaly analysis can group a period's inquiries by subject and count their
    # operators from the index alone, already in subject order.
    op.create_index(
        "ix_inquiries_subject_pseudonym",
        "inquiries",
        ["subject_pseudonym", "business_date", "operator_id"],
        unique=False,
    )
    op.create_index("ix_hq_requests_subject_pseudonym", "hq_requests", ["subject_pseudonym"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_hq_requests_subject_pseudonym", table_name="hq_requests")
    op.drop_index("ix_inquiries_subject_pseudonym", table_name="inquiries")
