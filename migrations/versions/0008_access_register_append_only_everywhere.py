"""the access-rights register is append-only on SQLite too, and refuses TRUNCATE on PostgreSQL (AC-3)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0007 guards the register with a row trigger on PostgreSQL only; the embedded SQLite default must refuse
# changes as well, and TRUNCATE skips row triggers on PostgreSQL.
_SQLITE = tuple(
    f"""
CREATE TRIGGER access_register_no_{verb.lower()} BEFORE {verb} ON access_register
BEGIN
    SELECT RAISE(ABORT, 'the access-rights register is append-only');
END
"""
    for verb in ("UPDATE", "DELETE")
)
_POSTGRESQL = (
    """
CREATE TRIGGER access_register_no_truncate BEFORE TRUNCATE ON access_register
    FOR EACH STATEMENT EXECUTE FUNCTION access_register_append_only()
""",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE if dialect == "sqlite" else _POSTGRESQL if dialect == "postgresql" else ():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS access_register_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_register_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS access_register_no_truncate ON access_register")
