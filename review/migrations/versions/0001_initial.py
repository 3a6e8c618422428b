"""Initial review store: review items, council reviews, users, login failures, audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # The chain starts from a fixed genesis hash; every append locks this row.
    op.bulk_insert(sa.table('audit_head', sa.column('id', sa.Integer), sa.column('seq', sa.Integer),
                            sa.column('hash', sa.String)),
                   [{'id': 1, 'seq': 0, 'hash': '0' * 64}])
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_key'), ['key'], unique=False)

    op.create_table('review_items',
    sa.Column('flag_id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('match_type', sa.String(length=64), nullable=False),
    sa.Column('match_title', sa.String(length=200), nullable=True),
    sa.Column('match_reason', sa.Text(), nullable=True),
    sa.Column('left_council', sa.String(length=16), nullable=False),
    sa.Column('left_dataset', sa.String(length=40), nullable=False),
    sa.Column('left_record_id', sa.String(length=100), nullable=False),
    sa.Column('right_council', sa.String(length=16), nullable=False),
    sa.Column('right_dataset', sa.String(length=40), nullable=False),
    sa.Column('right_record_id', sa.String(length=100), nullable=False),
    sa.Column('match_probability', sa.Float(), nullable=False),
    sa.Column('match_weight', sa.Float(), nullable=False),
    sa.Column('evidence', sa.Text(), nullable=False),
    sa.Column('evidence_hash', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('first_seen', sa.String(length=32), nullable=False),
    sa.Column('last_seen', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('flag_id')
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index('ix_items_left_queue', ['left_council', 'priority', 'flag_id'], unique=False)
        batch_op.create_index('ix_items_right_queue', ['right_council', 'priority', 'flag_id'], unique=False)
        batch_op.create_index('ix_items_run', ['run_id'], unique=False)
        batch_op.create_index('ix_items_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_items_match_type'), ['match_type'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('council', sa.String(length=16), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('council_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flag_id', sa.String(length=64), nullable=False),
    sa.Column('council', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=80), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('decided_by', sa.String(length=80), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['flag_id'], ['review_items.flag_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flag_id', 'council', name='uq_council_review')
    )
    with op.batch_alter_table('council_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_council_reviews_council', ['council', 'outcome'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('council_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_council_reviews_council')

    op.drop_table('council_reviews')
    op.drop_table('users')
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_items_match_type'))
        batch_op.drop_index('ix_items_status')
        batch_op.drop_index('ix_items_run')
        batch_op.drop_index('ix_items_right_queue')
        batch_op.drop_index('ix_items_left_queue')

    op.drop_table('review_items')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failures_key'))

    op.drop_table('login_failures')
    op.drop_table('audit_log')
    op.drop_table('audit_head')
