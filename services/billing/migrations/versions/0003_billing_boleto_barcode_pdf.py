"""Orders keep a boleto's barcode and PDF link as the processor gave them.

Revision ID: 7c41e0b9d2a6
Revises: 555c8d7316b7
Create Date: 2026-12-07 05:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '7c41e0b9d2a6'
down_revision = '555c8d7316b7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('boleto_barcode', sa.String(length=44), nullable=True))
        batch_op.add_column(sa.Column('boleto_pdf_url', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('boleto_pdf_url')
        batch_op.drop_column('boleto_barcode')
