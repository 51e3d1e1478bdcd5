"""Wrong codes typed without the link, for the daily per-e-mail cap.

Revision ID: 83938e7b6fc8
Revises: cfb660b8480e
Create Date: 2026-12-07 01:58:36.795884
"""
from alembic import op
import sqlalchemy as sa

revision = "83938e7b6fc8"
down_revision = "cfb660b8480e"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_code_failures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_code_failures"),
    )
    op.create_index("ix_login_code_failures_email_failed_at", "login_code_failures", ["email", "failed_at"])


def downgrade():
    op.drop_index("ix_login_code_failures_email_failed_at", table_name="login_code_failures")
    op.drop_table("login_code_failures")
