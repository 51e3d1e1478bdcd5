"""When a renewal's first attempt failed: its retries are counted from there.

Retries were counted from the due date, so a subscription taken up days late had its
missed retries made at once, one after another. A past-due subscription already there
failed at its due date as far as anyone knows, so its retries stay where they were.

Revision ID: 6b1f0c2d9e47
Revises: 28253bce63f3
Create Date: 2026-12-07 02:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '6b1f0c2d9e47'
down_revision = '28253bce63f3'
branch_labels = None
depends_on = None

subscriptions = sa.table(
    'subscriptions', sa.column('status', sa.String), sa.column('cycle_end', sa.DateTime(timezone=True)),
    sa.column('first_failed_at', sa.DateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(subscriptions.update().where(subscriptions.c.status == 'past_due')
               .values(first_failed_at=subscriptions.c.cycle_end))


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('first_failed_at')
