"""Keep each flag's evidence hash as a keyed digest bound to the flag (issue 11).

The pipeline's ``evidence_hash`` is an unkeyed hash of a flag's comparison levels; a few
thousand level combinations would give the levels back, and with them the evidence that
0004 sealed. This revision replaces each stored hash by ``Sealer.evidence_digests`` of it
(an HMAC under a key derived from the at-rest data key, ``<key_id>:<hex>``), so closed
"no issue" decisions keep suppressing their flag: the pipeline's hash still matches. The
column is widened to hold the digest. Like 0004 it asks for the store's
sealer only when there are rows, so an empty store needs no key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""
from alembic import context, op
import sqlalchemy as sa

from review.migrations import store_sealer


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_BATCH = 2000


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":  # SQLite does not enforce a VARCHAR length
        op.alter_column('review_items', 'evidence_hash', type_=sa.String(length=80), existing_nullable=False)
    else:
        conn.exec_driver_sql("PRAGMA secure_delete=ON")  # the old hashes' pages are zeroed, not just freed
    rows = conn.execute(sa.text("select flag_id, evidence_hash from review_items")).all()
    if not rows:
        return
    sealer = store_sealer(context.config, revision)
    for i in range(0, len(rows), _BATCH):
        chunk = rows[i:i + _BATCH]
        digests = sealer.evidence_digests([r[0] for r in chunk], [r[1] for r in chunk])
        conn.execute(sa.text("update review_items set evidence_hash = :h where flag_id = :f"),
                     [{"h": h, "f": r[0]} for h, r in zip(digests, chunk)])


def downgrade() -> None:
    raise NotImplementedError("0005 keyed the evidence hashes; the unkeyed ones cannot be recovered from them")
