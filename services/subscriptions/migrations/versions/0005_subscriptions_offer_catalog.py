"""Offers with the payment methods they accept and a status (active or archived).

Existing offers accept what their merchant allows (a null list) and are active.

Revision ID: 9d3e5a7c1b20
Revises: 6b1f0c2d9e47
Create Date: 2026-12-07 13:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '9d3e5a7c1b20'
down_revision = '6b1f0c2d9e47'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_methods_accepted', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False, server_default='active'))


def downgrade():
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_column('status')
        batch_op.drop_column('payment_methods_accepted')
