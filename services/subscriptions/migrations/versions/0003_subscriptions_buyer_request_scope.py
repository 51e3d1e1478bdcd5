"""Buyer requests keyed by e-mail, merchant scope and Idempotency-Key; no card-entry link kept.

A key was the buyer's across every session; it is now the buyer's within the session's
merchant scope ("" for the buyer's own login, unscoped). Requests stored before cannot
say which scope sent them, so they become the unscoped login's: that session sees every
merchant of the e-mail anyway, and a merchant-scoped session repeating one of them makes
a new request instead of seeing its answer.

A card-entry request's stored answer held billing's one-time ticket in clear: it is
dropped (a repeat of such a request now gets a fresh link, see idempotency.py).

Revision ID: 28253bce63f3
Revises: dabc257ed5a1
Create Date: 2026-12-07 02:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '28253bce63f3'
down_revision = 'dabc257ed5a1'
branch_labels = None
depends_on = None

buyer_requests = sa.table(
    'buyer_requests', sa.column('operation', sa.String), sa.column('merchant_scope', sa.String),
    sa.column('response', sa.JSON),
)
CARD_ENTRY = buyer_requests.c.operation == 'begin_card_update'


def upgrade():
    with op.batch_alter_table('buyer_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merchant_scope', sa.String(length=64), nullable=False, server_default=''))
        batch_op.drop_constraint(batch_op.f('uq_buyer_requests_email_idempotency_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_buyer_requests_email_merchant_scope_idempotency_key'), ['email', 'merchant_scope', 'idempotency_key'])
    # The default only filled the rows already there: every new one names its scope.
    with op.batch_alter_table('buyer_requests', schema=None) as batch_op:
        batch_op.alter_column('merchant_scope', server_default=None)
    op.execute(buyer_requests.update().where(CARD_ENTRY).values(response=sa.null()))


def downgrade():
    # The old schema holds one request per e-mail and key, and would answer a card-entry
    # request's repeat with its missing link: the rows it cannot hold are forgotten.
    op.execute(buyer_requests.delete().where(sa.or_(buyer_requests.c.merchant_scope != '', CARD_ENTRY)))
    with op.batch_alter_table('buyer_requests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_buyer_requests_email_merchant_scope_idempotency_key'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_buyer_requests_email_idempotency_key'), ['email', 'idempotency_key'])
        batch_op.drop_column('merchant_scope')
