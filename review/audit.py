"""Append-only, hash-chained audit trail of who saw or changed what.

Each entry's hash covers its own fields and its predecessor's hash, so editing,
deleting or reordering any entry breaks the chain from that point on; the
``audit_head`` row (the tip) also catches a truncated tail. Appends lock the
head row, so concurrent writers queue rather than fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from review.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def entry_hash(seq: int, at: str, actor: str, action: str, obj: str, detail: str, prev_hash: str) -> str:
    payload = json.dumps([seq, at, actor, action, obj, detail, prev_hash], separators=(",", ":"),
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(session: Session, actor: str, action: str, obj: str, detail: dict | str = "") -> AuditEntry:
    """Add one entry inside the caller's transaction (commits with the change it records)."""
    return append_many(session, [(actor, action, obj, detail)])[-1]


def append_many(session: Session, entries: list[tuple[str, str, str, dict | str]]) -> list[AuditEntry]:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    seq, prev = head.seq, head.hash
    added = []
    for actor, action, obj, detail in entries:
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True, default=str)
        seq += 1
        h = entry_hash(seq, at, actor, action, obj, text, prev)
        added.append(AuditEntry(seq=seq, at=at, actor=actor, action=action, object=obj,
                                detail=text, prev_hash=prev, hash=h))
        prev = h
    session.add_all(added)
    head.seq, head.hash = seq, prev
    session.flush()
    return added


@dataclass
class VerifyResult:
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, max_problems: int = 20) -> VerifyResult:
    """Walk the chain from the genesis hash; report the first breaks found."""
    result = VerifyResult()
    prev, expected_seq = GENESIS, 1
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=5000))
    for entry in rows.scalars():
        result.entries += 1
        if entry.seq != expected_seq:
            result.problems.append(f"entry {entry.seq}: expected sequence number {expected_seq} (entry missing or inserted)")
        if entry.prev_hash != prev:
            result.problems.append(f"entry {entry.seq}: prev_hash does not match the previous entry's hash")
        recomputed = entry_hash(entry.seq, entry.at, entry.actor, entry.action, entry.object,
                                entry.detail, entry.prev_hash)
        if recomputed != entry.hash:
            result.problems.append(f"entry {entry.seq}: contents altered (hash mismatch)")
        prev, expected_seq = entry.hash, entry.seq + 1
        if len(result.problems) >= max_problems:
            return result
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        result.problems.append("audit head row is missing")
    elif head.seq != expected_seq - 1 or head.hash != prev:
        result.problems.append(
            f"chain tip mismatch: head records entry {head.seq}, trail ends at entry {expected_seq - 1} "
            "(entries removed from the end?)")
    return result
