"""Refunds as records of their own (per request, full or partial, with states), and the
sandbox processor's side of them.

Revision ID: 9d2f6a4c1e70
Revises: 3b1e2cb8c1c9
Create Date: 2026-12-07 13:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '9d2f6a4c1e70'
down_revision = '3b1e2cb8c1c9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('refunds',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('order_id', sa.String(length=36), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('request_key', sa.String(length=255), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('actor', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('processor', sa.String(length=30), nullable=True),
    sa.Column('processor_account_id', sa.String(length=36), nullable=True),
    sa.Column('processor_reference', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_refunds_order_id_orders')),
    sa.ForeignKeyConstraint(['processor_account_id'], ['processor_accounts.id'], name=op.f('fk_refunds_processor_account_id_processor_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('merchant_id', 'request_key', name=op.f('uq_refunds_merchant_id_request_key'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_refunds_status'), ['status'], unique=False)

    op.create_table('sandbox_refunds',
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('charge_key', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('failure_reason', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('idempotency_key', name=op.f('pk_sandbox_refunds')),
    sa.UniqueConstraint('reference', name=op.f('uq_sandbox_refunds_reference'))
    )
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_refunds_charge_key'), ['charge_key'], unique=False)


def downgrade():
    with op.batch_alter_table('sandbox_refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_refunds_charge_key'))
    op.drop_table('sandbox_refunds')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_status'))
        batch_op.drop_index(batch_op.f('ix_refunds_order_id'))
    op.drop_table('refunds')
