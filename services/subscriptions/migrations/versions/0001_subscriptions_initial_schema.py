"""Initial schema: merchants, offers, contacts, subscriptions, activity, outbox.

Revision ID: 3cc9c89c4c3b
Revises: 
Create Date: 2026-11-26 04:07:00.773998
"""
from alembic import op
import sqlalchemy as sa


revision = '3cc9c89c4c3b'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('merchants',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('customer_can_change_payment_method', sa.Boolean(), nullable=False),
    sa.Column('customer_can_change_plan', sa.Boolean(), nullable=False),
    sa.Column('customer_can_cancel', sa.Boolean(), nullable=False),
    sa.Column('cancel_mode', sa.String(length=20), nullable=False),
    sa.Column('payment_methods_allowed', sa.JSON(), nullable=False),
    sa.Column('support_email', sa.String(length=254), nullable=True),
    sa.Column('support_phone', sa.String(length=30), nullable=True),
    sa.Column('support_url', sa.String(length=500), nullable=True),
    sa.Column('allowed_origins', sa.JSON(), nullable=False),
    sa.Column('brand_name', sa.String(length=200), nullable=True),
    sa.Column('accent_color', sa.String(length=7), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants'))
    )
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False)

    op.create_table('contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('document', sa.String(length=18), nullable=True),
    sa.Column('phone', sa.String(length=30), nullable=True),
    sa.Column('address_street', sa.String(length=200), nullable=True),
    sa.Column('address_number', sa.String(length=20), nullable=True),
    sa.Column('address_complement', sa.String(length=100), nullable=True),
    sa.Column('address_district', sa.String(length=100), nullable=True),
    sa.Column('address_city', sa.String(length=100), nullable=True),
    sa.Column('address_state', sa.String(length=2), nullable=True),
    sa.Column('address_postal_code', sa.String(length=9), nullable=True),
    sa.Column('address_country', sa.String(length=2), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_contacts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('merchant_id', 'email', name=op.f('uq_contacts_merchant_id_email'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_email'), ['email'], unique=False)

    op.create_table('offers',
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('product_name', sa.String(length=200), nullable=False),
    sa.Column('plan_name', sa.String(length=200), nullable=False),
    sa.Column('price_cents', sa.Integer(), nullable=False),
    sa.Column('periodicity_months', sa.Integer(), nullable=False),
    sa.Column('max_installments', sa.Integer(), nullable=False),
    sa.Column('plan_change_options', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_offers_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('merchant_id', 'id', name=op.f('pk_offers'))
    )
    op.create_table('subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('merchant_id', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('offer_id', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('cancel_reason', sa.String(length=20), nullable=True),
    sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False),
    sa.Column('cycle_number', sa.Integer(), nullable=False),
    sa.Column('cycle_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cycle_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_charge_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('payment_method', sa.String(length=20), nullable=False),
    sa.Column('card_brand', sa.String(length=20), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('card_exp', sa.String(length=7), nullable=True),
    sa.Column('payment_token', sa.String(length=200), nullable=True),
    sa.Column('installments', sa.Integer(), nullable=False),
    sa.Column('balance_cents', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id', 'offer_id'], ['offers.merchant_id', 'offers.id'], name=op.f('fk_subscriptions_merchant_id_offer_id_offers')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_subscriptions_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriptions')),
    sa.UniqueConstraint('merchant_id', 'external_id', name=op.f('uq_subscriptions_merchant_id_external_id'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_next_charge_at'), ['next_charge_at'], unique=False)

    op.create_table('subscription_activity',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=50), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_subscription_activity_subscription_id_subscriptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_activity'))
    )
    with op.batch_alter_table('subscription_activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_activity_subscription_id'), ['subscription_id'], unique=False)


def downgrade():
    with op.batch_alter_table('subscription_activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_activity_subscription_id'))

    op.drop_table('subscription_activity')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_next_charge_at'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_email'))
        batch_op.drop_index(batch_op.f('ix_subscriptions_created_at'))

    op.drop_table('subscriptions')
    op.drop_table('offers')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_email'))

    op.drop_table('contacts')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))

    op.drop_table('outbox')
    op.drop_table('merchants')
