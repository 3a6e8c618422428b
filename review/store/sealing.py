"""The review store's sensitive columns, sealed under the hub's at-rest data keys (issue 11).

Investigators' notes, recovered amounts and each flag's evidence (the per-record
comparison levels and weights) are stored only as AES-GCM envelopes
(``anonymise.crypto.seal``) under the **at-rest data key** of the keyring's active
version (``anonymise.at_rest.data_key``: random, wrapped under the KEK, re-wrapped by
``keys change-kek``). Nothing here is a second cipher: this module only says which
key, which header, and which row a value belongs to.

Each envelope's authenticated header names the column and the row (flag id, and the
council for a council's decision), so a value copied onto another row, or into another
column, is refused on open instead of being shown as that row's. Values are opened only
by the request that shows them (the flag page, the CSV export, the dashboard's sums).

Change detection at publish needs no decryption: ``content_hash`` is an HMAC of a flag's
published content under a key derived from the same data key (``<key_id>:<hex>``), so it
says nothing to someone without the KEK, and an unchanged flag is recognised by
comparing digests.

The key material lives in the data home that holds the review store's audit key
(``review.audit.root_for``: the bound data home, else the SQLite file's folder, else
``COUNCILMATCH_HOME``); that home needs a keyring (``councilmatch keys init``).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from anonymise import at_rest
from anonymise.crypto import read_header, seal, unseal
from anonymise.errors import TamperedError
from anonymise.kek import KEK, require_kek
from anonymise.keys import keyring_path
from councilmatch.home import Home
from review import audit

KIND = "review_column"
_DIGEST_PURPOSE = b"councilmatch review content digest v1"


class Sealer:
    """Seals and opens the review store's sensitive values with one data home's keys."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._kek: KEK | None = None
        self._stamp: tuple = ()
        self._digest_keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _kek_now(self) -> KEK:
        """The KEK, found once per keyring file (``keys change-kek`` rewrites it: found afresh)."""
        try:
            st = keyring_path(self.home).stat()
            stamp: tuple = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = ()
        with self._lock:
            if self._kek is None or self._stamp != stamp:
                self._kek, self._stamp = require_kek(self.home), stamp
                self._digest_keys.clear()
            return self._kek

    def active_key_id(self) -> str:
        return at_rest.active_key_id(self.home, self._kek_now())

    def _key(self, key_id: str, create: bool = False) -> bytes:
        return at_rest.data_key(self.home, key_id, self._kek_now(), create=create)

    # -- values -----------------------------------------------------------

    def seal_many(self, column: str, refs: Sequence[str], values: Sequence[bytes | None]) -> list[bytes | None]:
        """Seal each value for its row (``None`` stays ``None``), under the active data key."""
        kid = self.active_key_id()
        key = self._key(kid, create=True)
        return [None if v is None else seal(key, v, {"kind": KIND, "column": column, "ref": ref, "key_id": kid})
                for ref, v in zip(refs, values)]

    def seal(self, column: str, ref: str, value: bytes | None) -> bytes | None:
        return self.seal_many(column, [ref], [value])[0]

    def open(self, column: str, ref: str, blob: bytes | None) -> bytes | None:
        """The clear value of one row's sealed column; :class:`TamperedError` if it is not that row's."""
        if blob is None:
            return None
        blob = bytes(blob)
        what = f"review store {column} of {ref}"
        kid = read_header(blob, what).get("key_id")
        if not isinstance(kid, str):
            raise TamperedError(f"{what}: header names no key id")
        header, plain = unseal(self._key(kid), blob, what)
        if header.get("kind") != KIND or header.get("column") != column or header.get("ref") != ref:
            raise TamperedError(f"{what}: sealed for {header.get('column')!r} of {header.get('ref')!r}; "
                                "a value moved between rows or columns is refused")
        return plain

    def seal_text(self, column: str, ref: str, text: str | None) -> bytes | None:
        return self.seal(column, ref, None if text is None else text.encode("utf-8"))

    def open_text(self, column: str, ref: str, blob: bytes | None) -> str | None:
        plain = self.open(column, ref, blob)
        return None if plain is None else plain.decode("utf-8")

    def seal_amount(self, ref: str, amount: float | None) -> bytes | None:
        return self.seal("amount", ref, None if amount is None else repr(float(amount)).encode())

    def open_amount(self, ref: str, blob: bytes | None) -> float | None:
        plain = self.open("amount", ref, blob)
        return None if plain is None else float(plain)

    # -- change detection ---------------------------------------------------

    def _digest_key(self, key_id: str) -> bytes:
        if key_id not in self._digest_keys:
            self._digest_keys[key_id] = hmac.new(self._key(key_id, create=True), _DIGEST_PURPOSE,
                                                 hashlib.sha256).digest()
        return self._digest_keys[key_id]

    def digests(self, payloads: Iterable[str], key_id: str | None = None) -> list[str]:
        """``<key_id>:<HMAC-SHA-256 hex>`` of each payload (a flag's content, its id included)."""
        kid = key_id or self.active_key_id()
        key = self._digest_key(kid)
        return [f"{kid}:{hmac.new(key, p.encode('utf-8'), hashlib.sha256).hexdigest()}" for p in payloads]

    def evidence_digests(self, flag_ids: Iterable[str], evidence_hashes: Iterable[str],
                         key_id: str | None = None) -> list[str]:
        """What the store keeps of each flag's ``evidence_hash``: a keyed digest bound to the flag.

        The pipeline's evidence hash is an unkeyed hash of a few comparison levels, so the few
        thousand level combinations would give it back, with them the sealed evidence. Keyed, a
        thief without the KEK learns nothing; bound to the flag id, two flags with the same levels
        do not even show as alike.
        """
        return self.digests(evidence_payloads(flag_ids, evidence_hashes), key_id)

    def same_digests(self, payloads: Sequence[str], stored: Sequence[str | None], active: str,
                     fresh: Sequence[str] | None = None) -> np.ndarray:
        """Whether each payload digests to its stored value, each compared under the key it was
        made with (after ``keys rotate`` an unchanged value still counts as unchanged).
        ``fresh``: the payloads' digests under ``active``, if already made."""
        stored = pd.Series(list(stored), dtype=object)
        kid = stored.where(stored.notna(), "").astype(str).str.split(":", n=1).str[0]
        if fresh is None:
            fresh = self.digests(payloads, active)
        same = np.array(list(fresh), dtype=object) == stored.to_numpy()
        for k in sorted(set(kid) - {active, ""}):
            at = (kid == k).to_numpy()
            same[at] = np.array(self.digests([payloads[i] for i in np.flatnonzero(at)], k)) == stored[at].to_numpy()
        return same.astype(bool)


def evidence_payloads(flag_ids: Iterable[str], evidence_hashes: Iterable[str]) -> list[str]:
    """The input of a flag's evidence digest (the ``evidence`` prefix keeps it apart from content digests)."""
    return [f"evidence\x1f{f}\x1f{h}" for f, h in zip(flag_ids, evidence_hashes)]


def decision_ref(flag_id: str, council: str) -> str:
    """The row a council's note or amount is sealed for."""
    return f"{flag_id}/{council}"


_sealers: dict[tuple[str, str], Sealer] = {}
_sealers_lock = threading.Lock()


def sealer_for(db_url: str) -> Sealer:
    """The sealer of a review store: the keys of the data home its audit key lives in."""
    root = audit.root_for(db_url)
    key = (str(db_url), str(root))
    with _sealers_lock:
        if key not in _sealers:
            _sealers[key] = Sealer(Home(root))
        return _sealers[key]
