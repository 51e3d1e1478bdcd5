"""Self-service operations and renewals: quotes, pending changes, buyer requests, inbox.

Existing subscriptions keep their renewal time (`renewal_run_at` starts equal to
`next_charge_at`); a past-due one has already made its first charge attempt.

Revision ID: dabc257ed5a1
Revises: 3cc9c89c4c3b
Create Date: 2026-11-26 04:39:15.765475
"""
from alembic import op
import sqlalchemy as sa


revision = 'dabc257ed5a1'
down_revision = '3cc9c89c4c3b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('buyer_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('operation', sa.String(length=50), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('refusal', sa.JSON(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_requests')),
    sa.UniqueConstraint('email', 'idempotency_key', name=op.f('uq_buyer_requests_email_idempotency_key'))
    )
    with op.batch_alter_table('buyer_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buyer_requests_completed_at'), ['completed_at'], unique=False)

    op.create_table('inbox',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('handler', sa.String(length=100), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'handler', name=op.f('pk_inbox'))
    )
    op.create_table('plan_change_quotes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('from_offer_id', sa.String(length=64), nullable=False),
    sa.Column('cycle_number', sa.Integer(), nullable=False),
    sa.Column('payment_method', sa.String(length=20), nullable=False),
    sa.Column('to_offer_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('credit_cents', sa.Integer(), nullable=False),
    sa.Column('charge_cents', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.Integer(), nullable=False),
    sa.Column('max_installments', sa.Integer(), nullable=False),
    sa.Column('takes_effect', sa.String(length=20), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cycle_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cycle_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_renewal_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_renewal_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('installments', sa.Integer(), nullable=True),
    sa.Column('order_code', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_plan_change_quotes_subscription_id_subscriptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_change_quotes'))
    )
    with op.batch_alter_table('plan_change_quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_change_quotes_subscription_id'), ['subscription_id'], unique=False)

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_feedback', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('cancel_comment', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('renewal_run_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('charge_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('waiting_charge_method', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('pending_offer_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pending_quote_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('pending_change_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index(batch_op.f('ix_subscriptions_renewal_run_at'), ['renewal_run_at'], unique=False)

    subscriptions = sa.table(
        'subscriptions',
        sa.column('status', sa.String), sa.column('charge_attempts', sa.Integer),
        sa.column('next_charge_at', sa.DateTime(timezone=True)), sa.column('renewal_run_at', sa.DateTime(timezone=True)),
    )
    op.execute(subscriptions.update().values(renewal_run_at=subscriptions.c.next_charge_at))
    op.execute(subscriptions.update().where(subscriptions.c.status == 'past_due').values(charge_attempts=1))



def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_renewal_run_at'))
        batch_op.drop_column('version')
        batch_op.drop_column('pending_change_status')
        batch_op.drop_column('pending_quote_id')
        batch_op.drop_column('pending_offer_id')
        batch_op.drop_column('waiting_charge_method')
        batch_op.drop_column('charge_attempts')
        batch_op.drop_column('renewal_run_at')
        batch_op.drop_column('canceled_at')
        batch_op.drop_column('cancel_comment')
        batch_op.drop_column('cancel_feedback')

    with op.batch_alter_table('plan_change_quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_change_quotes_subscription_id'))

    op.drop_table('plan_change_quotes')
    op.drop_table('inbox')
    with op.batch_alter_table('buyer_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_buyer_requests_completed_at'))

    op.drop_table('buyer_requests')
