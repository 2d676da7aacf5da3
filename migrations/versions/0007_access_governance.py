"""access requests, the access-rights register, HR events, reviews, privileged sessions, emergency controls and incidents (AC-2..AC-5, IR-1, IR-2)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The access-rights register is append-only (AC-3): on PostgreSQL the database itself refuses changes.
_REGISTER_APPEND_ONLY = (
    """
CREATE OR REPLACE FUNCTION access_register_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the access-rights register is append-only';
END;
$$ LANGUAGE plpgsql
""",
    """
CREATE TRIGGER access_register_no_change BEFORE UPDATE OR DELETE ON access_register
    FOR EACH ROW EXECUTE FUNCTION access_register_append_only()
""",
)


def upgrade() -> None:
    op.create_table(
        "access_register",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("branch_code", sa.String(length=8), nullable=True),
        sa.Column("user_role_id", sa.Integer(), nullable=True),
        sa.Column("access_request_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=80), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=80), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_register")),
    )
    op.create_index(op.f("ix_access_register_user_id"), "access_register", ["user_id"], unique=False)
    op.create_table(
        "emergency_suspensions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("imposed_by", sa.String(length=80), nullable=False),
        sa.Column("imposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sessions_ended", sa.Integer(), nullable=False),
        sa.Column("lifted_by", sa.String(length=80), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lift_reason", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_suspensions")),
    )
    op.create_index(
        op.f("ix_emergency_suspensions_status"), "emergency_suspensions", ["status"], unique=False
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=80), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("affected_subjects", sa.JSON(), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=True),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("recurrence_prevention", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_status"), "incidents", ["status"], unique=False)
    op.create_table(
        "privileged_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("auth_session_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=80), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_note", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privileged_sessions")),
    )
    op.create_index(
        op.f("ix_privileged_sessions_auth_session_id"),
        "privileged_sessions",
        ["auth_session_id"],
        unique=False,
    )
    op.create_index(op.f("ix_privileged_sessions_user_id"), "privileged_sessions", ["user_id"], unique=False)
    op.create_table(
        "recertification_campaigns",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=400), nullable=True),
        sa.Column("started_by", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recertification_campaigns")),
    )
    op.create_index(
        op.f("ix_recertification_campaigns_status"), "recertification_campaigns", ["status"], unique=False
    )
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=True),
        sa.Column("source_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(length=80), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_tasks")),
    )
    op.create_index(op.f("ix_review_tasks_status"), "review_tasks", ["status"], unique=False)
    op.create_index(op.f("ix_review_tasks_user_id"), "review_tasks", ["user_id"], unique=False)
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("branch_code", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=True),
        sa.Column("role_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lapses_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=80), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_by", sa.String(length=80), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=400), nullable=True),
        sa.Column("applied_by", sa.String(length=80), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_role_id", sa.Integer(), nullable=True),
        sa.Column("secret_half_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("secret_half_nonce", sa.LargeBinary(), nullable=True),
        sa.Column("secret_half_wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("secret_half_kek_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_requests_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    op.create_index(op.f("ix_access_requests_status"), "access_requests", ["status"], unique=False)
    op.create_index(op.f("ix_access_requests_user_id"), "access_requests", ["user_id"], unique=False)
    op.create_table(
        "hr_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("to_branch_code", sa.String(length=8), nullable=True),
        sa.Column("received_from", sa.String(length=80), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_hr_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hr_events")),
    )
    op.create_index(op.f("ix_hr_events_status"), "hr_events", ["status"], unique=False)
    op.create_index(op.f("ix_hr_events_user_id"), "hr_events", ["user_id"], unique=False)
    op.create_table(
        "incident_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_entries_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_entries")),
    )
    op.create_index(
        op.f("ix_incident_entries_incident_id"), "incident_entries", ["incident_id"], unique=False
    )
    op.create_table(
        "totp_enrolments",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("secret_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("secret_wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("secret_kek_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_totp_enrolments_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_enrolments")),
    )
    op.create_table(
        "recertification_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=False),
        sa.Column("user_role_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("branch_code", sa.String(length=8), nullable=True),
        sa.Column("attester_role", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["recertification_campaigns.id"],
            name=op.f("fk_recertification_items_campaign_id_recertification_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["user_role_id"], ["user_roles.id"], name=op.f("fk_recertification_items_user_role_id_user_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recertification_items")),
        sa.UniqueConstraint("campaign_id", "user_role_id", name="uq_recertification_items_role"),
    )
    op.create_index(
        op.f("ix_recertification_items_campaign_id"), "recertification_items", ["campaign_id"], unique=False
    )

    if op.get_bind().dialect.name == "postgresql":
        for statement in _REGISTER_APPEND_ONLY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_register_no_change ON access_register")
        op.execute("DROP FUNCTION IF EXISTS access_register_append_only()")
    op.drop_index(op.f("ix_recertification_items_campaign_id"), table_name="recertification_items")
    op.drop_table("recertification_items")
    op.drop_table("totp_enrolments")
    op.drop_index(op.f("ix_incident_entries_incident_id"), table_name="incident_entries")
    op.drop_table("incident_entries")
    op.drop_index(op.f("ix_hr_events_user_id"), table_name="hr_events")
    op.drop_index(op.f("ix_hr_events_status"), table_name="hr_events")
    op.drop_table("hr_events")
    op.drop_index(op.f("ix_access_requests_user_id"), table_name="access_requests")
    op.drop_index(op.f("ix_access_requests_status"), table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index(op.f("ix_review_tasks_user_id"), table_name="review_tasks")
    op.drop_index(op.f("ix_review_tasks_status"), table_name="review_tasks")
    op.drop_table("review_tasks")
    op.drop_index(op.f("ix_recertification_campaigns_status"), table_name="recertification_campaigns")
    op.drop_table("recertification_campaigns")
    op.drop_index(op.f("ix_privileged_sessions_user_id"), table_name="privileged_sessions")
    op.drop_index(op.f("ix_privileged_sessions_auth_session_id"), table_name="privileged_sessions")
    op.drop_table("privileged_sessions")
    op.drop_index(op.f("ix_incidents_status"), table_name="incidents")
    op.drop_table("incidents")
    op.drop_index(op.f("ix_emergency_suspensions_status"), table_name="emergency_suspensions")
    op.drop_table("emergency_suspensions")
    op.drop_index(op.f("ix_access_register_user_id"), table_name="access_register")
    op.drop_table("access_register")
