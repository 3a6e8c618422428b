"""Append-only, keyed hash chain of who saw or changed what, anchored outside the database.

Each entry's MAC is HMAC-SHA-256, under the *audit key*, over its own fields and its
predecessor's MAC, so editing, deleting or reordering any entry breaks the chain from
that point on. The key is not in the database (``COUNCILMATCH_AUDIT_KEY``, else the
0600 file ``keys/review-audit.key`` of the data home), so someone who can write the
database cannot recompute a rewritten chain. The ``audit_head`` row (the tip) is
locked by appends, so concurrent writers queue rather than fork the chain; because
it lives in the same database it cannot by itself prove that nothing was cut off the
end. That is what *checkpoints* are for: ``checkpoint()`` (after every publish, on
the app's shutdown, and ``councilmatch audit checkpoint``) appends the signed tip to
``audit-checkpoints.jsonl`` in the data home and writes it to the log; ``verify``
then refuses a trail shorter than, or diverging from, any signed checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from councilmatch.environment import environment, variable
from councilmatch.fileio import write_once
from review.db import normalise_url, reading, writing
from review.models import AuditEntry, AuditHead

GENESIS = "0" * 64
KEY_ENV = variable("audit_key")
KEY_FILE = Path("keys") / "review-audit.key"
CHECKPOINTS_FILE = "audit-checkpoints.jsonl"
MIN_KEY_BYTES = 32

log = logging.getLogger("councilmatch.review.audit")


class AuditKeyError(Exception):
    """The audit key is missing, malformed or cannot be placed; the message says what to do."""


@dataclass(frozen=True)
class Anchor:
    """What the database does not hold: the chain's key and where signed checkpoints go."""

    key: bytes
    checkpoints: Path
    source: str

    def mac(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


_roots: dict[str, Path] = {}
_anchors: dict[str, Anchor] = {}
_lock = threading.Lock()


def _key_of(db_url: str) -> str:
    return make_url(normalise_url(str(db_url))).render_as_string(hide_password=False)


def bind(db_url: str, root: Path) -> None:
    """Keep the audit key and checkpoints of ``db_url`` under ``root`` (a data home)."""
    with _lock:
        k = _key_of(db_url)
        _roots[k] = Path(root)
        _anchors.pop(k, None)


def root_for(db_url: str) -> Path:
    """Where the key file and checkpoints live: the bound home, else the SQLite file's folder,
    else ``COUNCILMATCH_HOME``."""
    k = _key_of(db_url)
    if k in _roots:
        return _roots[k]
    url = normalise_url(str(db_url))
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent
    if (home := environment().home) is not None:
        return home
    raise AuditKeyError("the review store is not in a data home: set COUNCILMATCH_HOME so the audit key and "
                        "checkpoints have a place outside the database")


def _decode_key(raw: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.strip().replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"{where}: not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"{where}: the audit key must be at least {MIN_KEY_BYTES} random bytes (base64)")
    return key


LEGACY_HINT = ("if this store's trail predates the keyed audit (written by an older version), run "
               "`councilmatch audit seal-legacy --home DIR` once")


def _legacy_hash(seq: int, at: str, actor: str, action: str, obj: str, detail: str, prev_hash: str) -> str:
    """The unkeyed SHA-256 of trails written before the keyed chain (read only by ``seal_legacy``)."""
    payload = json.dumps([seq, at, actor, action, obj, detail, prev_hash], separators=(",", ":"),
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _is_legacy(db_url: str, anchor: Anchor) -> bool:
    with reading(db_url) as session:
        first = session.execute(select(AuditEntry).where(AuditEntry.seq == 1)).scalar_one_or_none()
    if first is None:
        return False
    args = (first.seq, first.at, first.actor, first.action, first.object, first.detail, first.prev_hash)
    return first.hash == _legacy_hash(*args) and first.hash != entry_hash(anchor, *args)


def anchor_for(db_url: str, *, create: bool = False, chain_empty: bool | None = None,
               allow_legacy: bool = False) -> Anchor:
    """The audit key (``COUNCILMATCH_AUDIT_KEY``, else ``<home>/keys/review-audit.key``) and checkpoint file.

    ``create`` makes the key file (0600) if there is none, but only while the chain is
    still empty: a lost key is reported rather than silently replaced. A trail still
    chained with the old unkeyed hash is refused until ``seal_legacy`` has keyed it.
    """
    k = _key_of(db_url)
    with _lock:
        if k in _anchors:
            return _anchors[k]
    root = root_for(db_url)
    checkpoints = root / CHECKPOINTS_FILE
    if (configured := environment().audit_key) is not None:
        anchor = Anchor(_decode_key(configured.get_secret_value(), KEY_ENV), checkpoints, KEY_ENV)
    else:
        path = root / KEY_FILE
        if not path.exists():
            if create and chain_empty is None:
                with reading(db_url) as session:
                    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
                    chain_empty = head is None or head.seq == 0
            if not (create and chain_empty):
                hint = "restore the key file from backup" if checkpoints.exists() else LEGACY_HINT
                raise AuditKeyError(f"no audit key at {path} (nor {KEY_ENV}) for a trail with entries: {hint}")
            # published whole, or not at all: another process may have won, then its key is used
            write_once(path, base64.urlsafe_b64encode(secrets.token_bytes(MIN_KEY_BYTES)) + b"\n")
        anchor = Anchor(_decode_key(path.read_text(), str(path)), checkpoints, str(path))
    if not allow_legacy and _is_legacy(db_url, anchor):
        raise AuditKeyError(f"the review audit trail is not keyed yet: {LEGACY_HINT}")
    with _lock:
        _anchors[k] = anchor
    return anchor


def _session_url(session: Session) -> str:
    bind_ = session.get_bind()
    return getattr(bind_, "engine", bind_).url.render_as_string(hide_password=False)


def entry_hash(anchor: Anchor, seq: int, at: str, actor: str, action: str, obj: str, detail: str,
               prev_hash: str) -> str:
    payload = json.dumps([seq, at, actor, action, obj, detail, prev_hash], separators=(",", ":"),
                         ensure_ascii=False)
    return anchor.mac(payload)


def pseudonym(anchor: Anchor, purpose: str, value: str) -> str:
    """A keyed, non-reversible label for a value that must not be stored as typed (e.g. a
    sign-in name that matched no user, which may well be a password)."""
    return "h:" + anchor.mac(f"{purpose}\x00{value}")[:16]


def append(session: Session, actor: str, action: str, obj: str, detail: dict | str = "") -> AuditEntry:
    """Add one entry inside the caller's transaction (commits with the change it records)."""
    return append_many(session, [(actor, action, obj, detail)])[-1]


def append_many(session: Session, entries: list[tuple[str, str, str, dict | str]]) -> list[AuditEntry]:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    anchor = anchor_for(_session_url(session), create=True, chain_empty=head.seq == 0)
    at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    seq, prev = head.seq, head.hash
    added = []
    for actor, action, obj, detail in entries:
        text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True, default=str)
        seq += 1
        h = entry_hash(anchor, seq, at, actor, action, obj, text, prev)
        added.append(AuditEntry(seq=seq, at=at, actor=actor, action=action, object=obj,
                                detail=text, prev_hash=prev, hash=h))
        prev = h
    session.add_all(added)
    head.seq, head.hash = seq, prev
    session.flush()
    return added


def seal_legacy(db_url: str, actor: str = "cli") -> dict:
    """Key a trail written before the keyed chain, once: only if its unkeyed chain is intact
    from genesis to the head, re-chain every entry under the audit key, record the old tip
    in an ``audit_sealed`` entry and sign a checkpoint. Returns the checkpoint.

    From here on the trail is tamper-evident against someone without the key; what was
    done to it *before* sealing is only as evident as the unkeyed chain made it.
    """
    with writing(db_url) as session:
        head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars())
        if not entries:
            raise AuditKeyError("the audit trail is empty: nothing to seal")
        prev, expected = GENESIS, 1
        for e in entries:
            if (e.seq != expected or e.prev_hash != prev
                    or _legacy_hash(e.seq, e.at, e.actor, e.action, e.object, e.detail, e.prev_hash) != e.hash):
                raise AuditKeyError(f"entry {e.seq}: the unkeyed trail is broken (or already keyed) there; "
                                    "not sealing it")
            prev, expected = e.hash, e.seq + 1
        if head.seq != expected - 1 or head.hash != prev:
            raise AuditKeyError(f"the head records entry {head.seq} but the trail ends at {expected - 1}: not sealing")
        anchor = anchor_for(db_url, create=True, chain_empty=True, allow_legacy=True)
        legacy_tip, prev = prev, GENESIS
        for e in entries:
            e.prev_hash = prev
            e.hash = entry_hash(anchor, e.seq, e.at, e.actor, e.action, e.object, e.detail, prev)
            prev = e.hash
        head.hash = prev
        session.flush()
        append(session, actor, "audit_sealed", "audit_log", {"legacy_entries": len(entries), "legacy_head": legacy_tip})
    return checkpoint(db_url, "legacy trail sealed")


# --------------------------------------------------------------------------
# Checkpoints: the signed tip, kept outside the database
# --------------------------------------------------------------------------


def _checkpoint_body(seq: int, head: str, at: str, reason: str) -> str:
    return json.dumps({"seq": seq, "head": head, "at": at, "reason": reason}, sort_keys=True,
                      separators=(",", ":"))


def checkpoint(db_url: str, reason: str) -> dict:
    """Append the chain's signed tip to ``audit-checkpoints.jsonl`` (0600) and log it; returns it.

    Called after each publish (one per run), on the review app's shutdown and by
    ``councilmatch audit checkpoint``; ship the log line off the machine to make the
    anchor independent of the data home too.
    """
    with reading(db_url) as session:
        head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
        seq, tip = head.seq, head.hash
    anchor = anchor_for(db_url, create=True, chain_empty=seq == 0)
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    reason = reason[:200]
    record = {"seq": seq, "head": tip, "at": at, "reason": reason,
              "mac": anchor.mac(_checkpoint_body(seq, tip, at, reason))}
    line = json.dumps(record, sort_keys=True)
    anchor.checkpoints.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(anchor.checkpoints, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("review audit checkpoint %s", line)
    return record


def latest_checkpoint(db_url: str) -> dict | None:
    """The newest signed checkpoint of ``db_url``'s trail (for the run's state and report)."""
    good, _ = read_checkpoints(anchor_for(db_url))
    return good[-1] if good else None


def read_checkpoints(anchor: Anchor) -> tuple[list[dict], list[str]]:
    """Signed checkpoints from the file, and problems with lines that are not (forged or damaged)."""
    good, problems = [], []
    if not anchor.checkpoints.exists():
        return good, problems
    for n, line in enumerate(anchor.checkpoints.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            body = _checkpoint_body(int(rec["seq"]), str(rec["head"]), str(rec["at"]), str(rec["reason"]))
            ok = hmac.compare_digest(anchor.mac(body), str(rec["mac"]))
        except (ValueError, KeyError, TypeError):
            ok = False
        if ok:
            good.append(rec)
        else:
            problems.append(f"{anchor.checkpoints} line {n}: not a checkpoint signed with the audit key")
    return good, problems


@dataclass
class VerifyResult:
    entries: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, max_problems: int = 20, anchor: Anchor | None = None,
           extra_checkpoints: list[dict] | None = None) -> VerifyResult:
    """Walk the chain from the genesis hash with the audit key, then hold it against every signed
    checkpoint (the file, plus ``extra_checkpoints`` taken from a log): report the first breaks."""
    result = VerifyResult()
    try:
        anchor = anchor or anchor_for(_session_url(session))
    except AuditKeyError as exc:
        result.problems.append(str(exc))
        return result
    checkpoints, bad = read_checkpoints(anchor)
    result.problems += bad
    for rec in extra_checkpoints or []:
        body = _checkpoint_body(int(rec["seq"]), str(rec["head"]), str(rec["at"]), str(rec["reason"]))
        if hmac.compare_digest(anchor.mac(body), str(rec.get("mac", ""))):
            checkpoints.append(rec)
        else:
            result.problems.append(f"checkpoint {rec.get('seq')} given: not signed with the audit key")
    result.checkpoints = len(checkpoints)
    wanted = {int(c["seq"]) for c in checkpoints}
    seen: dict[int, str] = {0: GENESIS}
    prev, expected_seq = GENESIS, 1
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=5000))
    for entry in rows.scalars():
        result.entries += 1
        if entry.seq != expected_seq:
            result.problems.append(f"entry {entry.seq}: expected sequence number {expected_seq} (entry missing or inserted)")
        if entry.prev_hash != prev:
            result.problems.append(f"entry {entry.seq}: prev_hash does not match the previous entry's hash")
        recomputed = entry_hash(anchor, entry.seq, entry.at, entry.actor, entry.action, entry.object,
                                entry.detail, entry.prev_hash)
        if not hmac.compare_digest(recomputed, entry.hash):
            result.problems.append(f"entry {entry.seq}: contents altered (MAC mismatch)")
        if entry.seq in wanted:
            seen[entry.seq] = entry.hash
        prev, expected_seq = entry.hash, entry.seq + 1
        if len(result.problems) >= max_problems:
            return result
    last = expected_seq - 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        result.problems.append("audit head row is missing")
    elif head.seq != last or head.hash != prev:
        result.problems.append(
            f"chain tip mismatch: head records entry {head.seq}, trail ends at entry {last} "
            "(entries removed from the end?)")
    for c in sorted(checkpoints, key=lambda c: int(c["seq"])):
        seq = int(c["seq"])
        if seq > last:
            result.problems.append(f"trail ends at entry {last} but the checkpoint of {c['at']} signed entry {seq} "
                                   "(entries removed from the end)")
            break
        if seen.get(seq) != c["head"]:
            result.problems.append(f"entry {seq} differs from the checkpoint of {c['at']} (trail rewritten)")
            break
    return result
