"""An e-mail keeps the QR codes its HTML shows inline (the pix e-mail's).

Revision ID: 3f9a2c71e8b4
Revises: 5ed1cc658fae
Create Date: 2026-12-07 05:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = "3f9a2c71e8b4"
down_revision = "5ed1cc658fae"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outgoing_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inline_qr_codes", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("outgoing_emails", schema=None) as batch_op:
        batch_op.drop_column("inline_qr_codes")
