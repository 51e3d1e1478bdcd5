"""Charges (kind, processor, decline reason), card-entry tickets and their per-address
counters, and the sandbox processor's own tables.

Revision ID: 555c8d7316b7
Revises: be297a859140
Create Date: 2026-11-26 04:39:23.813775
"""
from alembic import op
import sqlalchemy as sa


revision = '555c8d7316b7'
down_revision = 'be297a859140'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('card_entry_windows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_entry_windows')),
    sa.UniqueConstraint('address', 'window_start', name=op.f('uq_card_entry_windows_address_window_start'))
    )
    with op.batch_alter_table('card_entry_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_entry_windows_window_start'), ['window_start'], unique=False)

    op.create_table('sandbox_charges',
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('token', sa.String(length=200), nullable=True),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('installments', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('decline_reason', sa.String(length=40), nullable=True),
    sa.Column('boleto_line', sa.String(length=47), nullable=True),
    sa.Column('boleto_due_date', sa.Date(), nullable=True),
    sa.Column('pix_code', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('reference', name=op.f('pk_sandbox_charges')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sandbox_charges_idempotency_key'))
    )
    op.create_table('sandbox_tokens',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('brand', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('behaviour', sa.String(length=30), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_sandbox_tokens'))
    )
    op.create_table('card_entry_tickets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('ticket_digest', sa.String(length=64), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payment_method_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['payment_method_id'], ['payment_methods.id'], name=op.f('fk_card_entry_tickets_payment_method_id_payment_methods')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_entry_tickets')),
    sa.UniqueConstraint('ticket_digest', name=op.f('uq_card_entry_tickets_ticket_digest'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('processor', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('processor_reference', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('decline_reason', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_status'), ['status'], unique=False)



def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_status'))
        batch_op.drop_column('decline_reason')
        batch_op.drop_column('processor_reference')
        batch_op.drop_column('processor')
        batch_op.drop_column('kind')

    op.drop_table('card_entry_tickets')
    op.drop_table('sandbox_tokens')
    op.drop_table('sandbox_charges')
    with op.batch_alter_table('card_entry_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_entry_windows_window_start'))

    op.drop_table('card_entry_windows')
