"""Council queue keys on council_reviews (one row per involved council from publish on).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

QUEUE_COLUMNS = ("priority", "match_probability", "match_type", "run_id", "first_seen", "status")


def upgrade() -> None:
    with op.batch_alter_table('council_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('match_probability', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('match_type', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('run_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('first_seen', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_queue', ['council', 'priority', sa.text('match_probability DESC'), 'flag_id',
                                           'status', 'match_type', 'run_id'], unique=False)
        batch_op.create_index('ix_queue_runs', ['council', 'run_id', 'match_type', 'first_seen'], unique=False)
    # Backfill: a row for every involved council (central never reviews), then copy the queue keys.
    for side in ('left_council', 'right_council'):
        op.execute(sa.text(
            f"INSERT INTO council_reviews (flag_id, council, closed) "
            f"SELECT r.flag_id, r.{side}, false FROM review_items r WHERE r.{side} <> 'central' "
            f"AND NOT EXISTS (SELECT 1 FROM council_reviews c WHERE c.flag_id = r.flag_id AND c.council = r.{side})"))
    for col in QUEUE_COLUMNS:
        op.execute(sa.text(f"UPDATE council_reviews SET {col} = "
                           f"(SELECT r.{col} FROM review_items r WHERE r.flag_id = council_reviews.flag_id)"))


def downgrade() -> None:
    with op.batch_alter_table('council_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_queue_runs')
        batch_op.drop_index('ix_queue')
        for col in reversed(QUEUE_COLUMNS):
            batch_op.drop_column(col)
