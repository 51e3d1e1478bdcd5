"""A card-entry ticket keeps, until it is used, the holder's details its buyer's
merchant knows (name, CPF/CNPJ, phone, CEP, number), to prefill the card form.

Revision ID: 4e8a1f27c5b3
Revises: 9d2f6a4c1e70
Create Date: 2026-12-07 14:15:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '4e8a1f27c5b3'
down_revision = '9d2f6a4c1e70'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('card_entry_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('holder', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('card_entry_tickets', schema=None) as batch_op:
        batch_op.drop_column('holder')
