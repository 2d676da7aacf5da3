"""indexes for the auditor's queries: subject pseudonym lookups (AC-6), the anomaly scans (LG-3)

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
    # Subject access looks inquiries and HQ requests up by pseudonym; each lookup read the whole table.
    op.create_index("ix_inquiries_subject_pseudonym", "inquiries", ["subject_pseudonym"], unique=False)
    op.create_index("ix_hq_requests_subject_pseudonym", "hq_requests", ["subject_pseudonym"], unique=False)
    # The shared-subject anomaly groups a period's inquiries by subject and counts their operators: with
    # these columns after the date it reads the index alone. The date prefix serves every query the
    # single-column date index served, so it replaces it rather than adding a write per inquiry.
    op.create_index(
        "ix_inquiries_business_date_subject",
        "inquiries",
        ["business_date", "subject_pseudonym", "operator_id"],
        unique=False,
    )
    op.drop_index("ix_inquiries_business_date", table_name="inquiries")
    # The activity and late-view scans select a period's events of a few actions; led by the action
    # and carrying what they read, the index answers them without touching the (wide) event rows.
    # It replaces the single-column action index, whose prefix it keeps.
    op.create_index(
        "ix_audit_events_action_at",
        "audit_events",
        ["action", "at", "actor_id", "terminal_id", "object_id"],
        unique=False,
    )
    op.drop_index("ix_audit_events_action", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_action", "audit_events", ["action"], unique=False)
    op.drop_index("ix_audit_events_action_at", table_name="audit_events")
    op.create_index("ix_inquiries_business_date", "inquiries", ["business_date"], unique=False)
    op.drop_index("ix_inquiries_business_date_subject", table_name="inquiries")
    op.drop_index("ix_hq_requests_subject_pseudonym", table_name="hq_requests")
    op.drop_index("ix_inquiries_subject_pseudonym", table_name="inquiries")
