"""Processor accounts per merchant (credentials sealed), and the account each order
and payment method went through (with the processor's customer of a card).

Revision ID: 3b1e2cb8c1c9
Revises: 7c41e0b9d2a6
Create Date: 2026-12-07 05:05:46.822989
"""
from alembic import op
import sqlalchemy as sa


revision = '3b1e2cb8c1c9'
down_revision = '7c41e0b9d2a6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('processor_accounts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('processor', sa.String(length=30), nullable=False),
    sa.Column('environment', sa.String(length=20), nullable=False),
    sa.Column('sealed_credentials', sa.Text(), nullable=False),
    sa.Column('api_key_hint', sa.String(length=4), nullable=False),
    sa.Column('notify_emails', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processor_accounts')),
    sa.UniqueConstraint('merchant_id', name=op.f('uq_processor_accounts_merchant_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processor_account_id', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_orders_processor_account_id_processor_accounts'), 'processor_accounts', ['processor_account_id'], ['id'])

    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processor_account_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('customer_ref', sa.String(length=100), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_payment_methods_processor_account_id_processor_accounts'), 'processor_accounts', ['processor_account_id'], ['id'])



def downgrade():
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_payment_methods_processor_account_id_processor_accounts'), type_='foreignkey')
        batch_op.drop_column('customer_ref')
        batch_op.drop_column('processor_account_id')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_processor_account_id_processor_accounts'), type_='foreignkey')
        batch_op.drop_column('processor_account_id')

    op.drop_table('processor_accounts')
