"""Seal notes, amounts and evidence; publish as an upsert of changed flags only (issues 11, 12).

Adds ``review_items.evidence_sealed``, ``content_hash``, ``updated_at``, ``retracted_in`` and
``council_reviews.note_sealed``, ``amount_sealed``; seals the existing clear values under the
data home's at-rest data key (the migration asks for the store's sealer only when
there is something to seal, so an empty store needs no key), then drops the clear columns.
On SQLite the freed pages are zeroed (``secure_delete``) and ``review.db.migrate`` folds the
write-ahead log afterwards; on PostgreSQL the old row versions stay in the table files until
``VACUUM FULL review_items, council_reviews`` (docs/security.md). Audit entries written before this revision keep the amount they recorded (rewriting them would
break the keyed chain); entries from this revision on hold it sealed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
from alembic import context, op
import sqlalchemy as sa

from review.migrations import store_sealer


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_BATCH = 2000


def _sealer():  # noqa: ANN202
    return store_sealer(context.config, revision)


def upgrade() -> None:
    # Plain ALTER TABLE, no batch "move and copy": on SQLite, re-creating review_items would drop it,
    # and its ON DELETE CASCADE would take every council's decisions with it.
    for column in (sa.Column('evidence_sealed', sa.LargeBinary(), nullable=True),
                   sa.Column('content_hash', sa.String(length=80), nullable=True),
                   sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
                   sa.Column('retracted_in', sa.String(length=64), nullable=True)):
        op.add_column('review_items', column)
    op.add_column('council_reviews', sa.Column('amount_sealed', sa.LargeBinary(), nullable=True))
    op.add_column('council_reviews', sa.Column('note_sealed', sa.LargeBinary(), nullable=True))

    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")  # the clear values' old pages are zeroed, not just freed
    sealer = None
    items = conn.execute(sa.text("select flag_id, evidence from review_items where evidence is not null")).all()
    for i in range(0, len(items), _BATCH):
        sealer = sealer or _sealer()
        chunk = items[i:i + _BATCH]
        sealed = sealer.seal_many("evidence", [r[0] for r in chunk], [r[1].encode("utf-8") for r in chunk])
        conn.execute(sa.text("update review_items set evidence_sealed = :e where flag_id = :f"),
                     [{"e": e, "f": r[0]} for e, r in zip(sealed, chunk)])
    reviews = conn.execute(sa.text("select id, flag_id, council, note, amount from council_reviews "
                                   "where note is not null or amount is not null")).all()
    for rid, flag_id, council, note, amount in reviews:
        sealer = sealer or _sealer()
        ref = f"{flag_id}/{council}"
        conn.execute(sa.text("update council_reviews set note_sealed = :n, amount_sealed = :a where id = :i"),
                     {"n": sealer.seal_text("note", ref, note), "a": sealer.seal_amount(ref, amount), "i": rid})
    op.drop_column('review_items', 'evidence')  # SQLite >= 3.35 drops a plain column in place
    op.drop_column('council_reviews', 'note')
    op.drop_column('council_reviews', 'amount')


def downgrade() -> None:
    raise NotImplementedError("0004 sealed clear columns; there is no way back without decrypting them")
