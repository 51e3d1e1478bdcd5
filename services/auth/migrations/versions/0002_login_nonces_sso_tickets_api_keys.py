"""Login requests bound to a browser nonce, SSO tickets, merchant API keys.

Revision ID: cfb660b8480e
Revises: a023a293fe09
Create Date: 2026-11-26 04:40:48.736973
"""
from alembic import op
import sqlalchemy as sa

revision = "cfb660b8480e"
down_revision = "a023a293fe09"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_index("ix_api_keys_merchant_id", "api_keys", ["merchant_id"])

    op.create_table(
        "sso_tickets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sso_tickets"),
        sa.UniqueConstraint("ticket_hash", name="uq_sso_tickets_ticket_hash"),
    )

    # Batch mode: SQLite adds a unique constraint only by rebuilding the table.
    with op.batch_alter_table("login_requests") as batch_op:
        batch_op.add_column(sa.Column("nonce_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_login_requests_nonce_hash", ["nonce_hash"])
    op.create_index(
        "ix_login_requests_client_address_created_at", "login_requests", ["client_address", "created_at"],
    )

    op.add_column("sessions", sa.Column("return_url", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("sessions") as batch_op:
        batch_op.drop_column("return_url")
    op.drop_index("ix_login_requests_client_address_created_at", table_name="login_requests")
    with op.batch_alter_table("login_requests") as batch_op:
        batch_op.drop_constraint("uq_login_requests_nonce_hash", type_="unique")
        batch_op.drop_column("nonce_hash")
    op.drop_table("sso_tickets")
    op.drop_index("ix_api_keys_merchant_id", table_name="api_keys")
    op.drop_table("api_keys")
