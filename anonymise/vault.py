"""The vault: each council's clear identifiers, encrypted, read back only through an audit.

Layout (under ``home/vault/<council>/<dataset>/``):

* ``<extract_id>.enc``            the extract's clear identifying columns + record_id,
                                  as Parquet, sealed under the council's data key;
* ``<extract_id>.index.parquet``  keyed hashes of its record ids (no clear value), so
                                  re-identification opens only the extract it needs.

One index per extract (never a shared file) keeps concurrent stores race-free.
``reidentify`` is the one read path and appends a JSON line to ``vault/audit.log``.
"""

from __future__ import annotations

import hmac
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from anonymise.datakeys import safe_name, seal_for_council, unseal_for_council
from anonymise.encodings import hmac64
from anonymise.errors import AnonymiseError, TamperedError
from anonymise.keys import Keyring
from anonymise.minimise import is_ref, record_refs, ref_key
from anonymise.pseudonymised import write_table
from councilmatch.contracts import IDENTIFIERS, REFERENCE
from councilmatch.fileio import atomic_write
from councilmatch.home import Home
from councilmatch.safepath import path_inside
from ingest.extract import vault_text

INDEX_PURPOSE = "vault_index"
VAULT_COLUMNS: tuple[str, ...] = REFERENCE + IDENTIFIERS


_INDEX_SCHEMA = pa.schema([("rid_hash", pa.int64()), ("ref", pa.string())])


def vault_table(canonical: pd.DataFrame) -> pa.Table:
    """The clear values the vault keeps of a frame's rows: :data:`VAULT_COLUMNS` as text
    (:func:`ingest.extract.vault_text`), a column the frame lacks all missing."""
    n = len(canonical)
    return pa.table({c: vault_text(canonical[c]).array._pa_array.combine_chunks().cast(pa.string())  # noqa: SLF001
                     if c in canonical.columns and n else pa.nulls(n, pa.string()) for c in VAULT_COLUMNS},
                    schema=pa.schema([(c, pa.string()) for c in VAULT_COLUMNS]))


def last_then_fresh(origin: np.ndarray, last_rows: int) -> np.ndarray:
    """Each row's position among (the last extract's ``last_rows`` rows, then tonight's fresh rows
    in file order), from ``origin`` (its row in the last extract, or -1 for a fresh row): one
    ``take`` of the two tables by it puts every row in file order (the store's rows, the vault's
    and its index)."""
    at = origin.astype(np.int64, copy=True)
    fresh = origin < 0
    at[fresh] = last_rows + np.arange(int(fresh.sum()))
    return at


class RecordNotFound(AnonymiseError, KeyError):
    """No vaulted record has this council and record id."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Vault:
    def __init__(self, home: Home, keyring: Keyring) -> None:
        self.home = home
        self.keyring = keyring

    # -- paths and hashes --------------------------------------------------
    def _folder(self, council: str, dataset: str) -> Path:
        return path_inside(self.home.vault, safe_name(council, "council"), safe_name(dataset, "dataset"),
                           what="vault folder")

    def blob_path(self, council: str, dataset: str, extract_id: str) -> Path:
        return path_inside(self._folder(council, dataset), f"{safe_name(extract_id, 'extract id')}.enc",
                           what="vault file")

    def _index_path(self, blob: Path) -> Path:
        return blob.with_name(blob.name[: -len(".enc")] + ".index.parquet")

    def _record_hashes(self, council: str, record_ids: pd.Series, key_id: str) -> np.ndarray:
        key = self.keyring.subkey(INDEX_PURPOSE, key_id)
        return hmac64(key, [f"{council}\x1f{r}" for r in record_ids.tolist()])

    # -- write ---------------------------------------------------------------
    def store(self, council: str, extract_id: str, canonical: pd.DataFrame | pa.Table,
              carried: tuple[np.ndarray, pa.Table] | None = None,
              refs: pa.Array | pa.ChunkedArray | None = None) -> Path:
        """Seal the extract's clear identifiers; a second call for the same extract is a no-op.

        ``canonical``: a frame, or a table of :data:`VAULT_COLUMNS` as text (:func:`vault_table`).
        ``carried``: (row positions, their index rows from ``read_index``) for rows carried over
        unchanged from the feed's last extract, whose keyed hashes need not be made again.
        ``refs``: the store's keyed reference of every row, in row order, as the pseudonymised
        extract holds them (made once per ingest, not again here; its first and last rows are
        checked against their records)."""
        clear = canonical if isinstance(canonical, pa.Table) else vault_table(canonical)
        councils = pc.unique(clear.column("council")).to_pylist()
        if clear.num_rows and councils != [council]:
            raise AnonymiseError(f"vault store for {council}: frame holds other councils' records")
        datasets = pc.unique(clear.column("dataset")).to_pylist() if clear.num_rows else []
        if len(datasets) > 1:
            raise AnonymiseError(f"vault store for {council}/{extract_id}: frame mixes data sets {datasets}")
        dataset = str(datasets[0]) if len(datasets) else "unknown"
        blob_path = self.blob_path(council, dataset, extract_id)
        index_path = self._index_path(blob_path)
        if blob_path.exists() and index_path.exists():
            return blob_path
        buf = io.BytesIO()
        pq.write_table(clear, buf)  # read back as objects and None
        stored_at = _now()
        blob = seal_for_council(self.home, self.keyring, council, buf.getvalue(),
                                {"kind": "vault", "dataset": dataset, "extract_id": extract_id, "stored_at": stored_at})
        atomic_write(blob_path, blob)

        n = clear.num_rows
        todo = np.ones(n, dtype=bool)
        if carried is not None and len(carried[0]):
            todo[carried[0]] = False
        fresh = clear.filter(pa.array(todo)).select(["council", "record_id"]).to_pandas()
        fresh_hash = self._record_hashes(council, fresh["record_id"].astype(str), self.keyring.key_id)
        # the store's keyed reference of each record (anonymise.minimise), so a flag maps back
        if refs is not None:
            fresh_refs = self._checked_refs(refs, fresh, todo)
        else:
            fresh_refs = pa.array(record_refs(ref_key(self.home), fresh["council"].astype(str),
                                              fresh["record_id"].astype(str)).astype(str).to_numpy(dtype=object),
                                  type=pa.string())
        if todo.all():
            index = pa.table({"rid_hash": fresh_hash, "ref": fresh_refs})
        else:  # the carried rows' index rows, then the fresh ones', put in row order by one take
            positions, rows = carried
            origin = np.full(n, -1, dtype=np.int64)
            origin[positions] = np.arange(len(positions))
            both = pa.concat_tables([rows.select(["rid_hash", "ref"]).cast(_INDEX_SCHEMA),
                                     pa.table({"rid_hash": fresh_hash, "ref": fresh_refs}, schema=_INDEX_SCHEMA)])
            index = both.take(pa.array(last_then_fresh(origin, len(positions))))
        index = index.replace_schema_metadata({b"vault_index": json.dumps({
            "key_id": self.keyring.key_id, "extract_id": extract_id, "dataset": dataset, "stored_at": stored_at,
        }).encode()})
        write_table(index, index_path)
        return blob_path

    def _checked_refs(self, refs: pa.Array | pa.ChunkedArray, fresh: pd.DataFrame, todo: np.ndarray) -> pa.Array:
        """``refs`` of the ``todo`` rows, after checking the references belong to those rows (their
        count, and the first and last fresh rows' references made again): a misordered reference
        would re-identify the wrong person."""
        if len(refs) != len(todo):
            raise AnonymiseError(f"vault store: {len(refs)} references for {len(todo)} rows")
        fresh_refs = refs.filter(pa.array(todo))
        if isinstance(fresh_refs, pa.ChunkedArray):
            fresh_refs = fresh_refs.combine_chunks()
        if len(fresh):
            ends = fresh.iloc[[0, len(fresh) - 1]]
            made = record_refs(ref_key(self.home), ends["council"].astype(str), ends["record_id"].astype(str)).tolist()
            if made != [fresh_refs[0].as_py(), fresh_refs[len(fresh) - 1].as_py()]:
                raise AnonymiseError("vault store: the references given are not these rows'")
        return fresh_refs

    def read_index(self, council: str, dataset: str, extract_id: str) -> pa.Table | None:
        """One extract's index rows (keyed hashes, no clear value) in stored order, if made under
        the active key id (else None: its hashes are not tonight's)."""
        path = self._index_path(self.blob_path(council, dataset, extract_id))
        if not path.exists():
            return None
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"vault_index", b"{}"))
        if meta.get("key_id") != self.keyring.key_id or not {"rid_hash", "ref"} <= set(table.column_names):
            return None
        return table.select(["rid_hash", "ref"]).replace_schema_metadata(None)

    def read_extract(self, council: str, dataset: str, extract_id: str) -> pd.DataFrame:
        """One extract's vaulted rows (text, in the order stored), for the hub's own ingest of the
        feed's next extract (``anonymise.reuse.row_memory``): never returned to a person, so not audited."""
        blob_path = self.blob_path(council, dataset, extract_id)
        _, plain = unseal_for_council(self.home, self.keyring, council, blob_path.read_bytes(), str(blob_path))
        # Arrow-backed strings: the placeholder rules and the profile run Arrow kernels on them
        return pq.read_table(io.BytesIO(plain)).to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)

    # -- read (audited) --------------------------------------------------------
    def _candidates(self, council: str, record_id: str, dataset: str | None) -> list[dict]:
        root = self.home.vault / safe_name(council, "council")
        pattern = f"{safe_name(dataset, 'dataset')}/*.index.parquet" if dataset else "*/*.index.parquet"
        hits: list[dict] = []
        hashes: dict[str, int] = {}
        for path in root.glob(pattern):
            meta = json.loads(pq.read_schema(path).metadata[b"vault_index"])
            kid = meta["key_id"]
            if not self.keyring.has(kid):
                continue  # key version retired: data no longer readable by design
            if kid not in hashes:
                hashes[kid] = int(self._record_hashes(council, pd.Series([record_id]), kid)[0])
            if is_ref(record_id):
                table = pq.read_table(path)
                found = "ref" in table.column_names and record_id in set(table.column("ref").to_pylist())
            else:
                col = pq.read_table(path, columns=["rid_hash"]).column("rid_hash").to_numpy()
                found = bool((col == hashes[kid]).any())
            if found:
                hits.append(meta | {"blob": path.with_name(path.name.replace(".index.parquet", ".enc"))})
        return sorted(hits, key=lambda m: (m["stored_at"], m["extract_id"]))

    def _audit(self, entry: dict) -> None:
        self.home.vault.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        fd = os.open(self.home.vault / "audit.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write per entry: O_APPEND keeps concurrent lines whole
        finally:
            os.close(fd)

    def reidentify(self, council: str, record_id: str, actor: str, reason: str,
                   dataset: str | None = None) -> dict[str, str | None]:
        """The newest clear record of ``council``/``record_id``; every call is audited."""
        if not actor or not reason:
            raise AnonymiseError("re-identification needs an actor and a reason (both are audited)")
        rid_hash = hmac.new(self.keyring.subkey(INDEX_PURPOSE), f"{council}\x1f{record_id}".encode(),
                            "sha256").hexdigest()[:16]
        entry = {"time": _now(), "actor": actor, "council": council, "dataset": dataset,
                 "record_hash": rid_hash, "reason": reason}
        try:
            hits = self._candidates(council, record_id, dataset)
            if not hits:
                raise RecordNotFound(f"no vaulted record {council}/{'<hash ' + rid_hash + '>'}"
                                     + (f" in {dataset}" if dataset else ""))
            newest = hits[-1]
            _, plain = unseal_for_council(self.home, self.keyring, council, newest["blob"].read_bytes(),
                                          str(newest["blob"]))
            frame = pq.read_table(io.BytesIO(plain)).to_pandas()
            if is_ref(record_id):  # the store's keyed reference: find the record it stands for

                rows = frame[record_refs(ref_key(self.home), frame["council"].astype(str),
                                         frame["record_id"].astype(str)) == record_id]
            else:
                rows = frame[frame["record_id"] == str(record_id)]
            if rows.empty:
                raise TamperedError(f"{newest['blob']}: index lists the record but the blob does not hold it")
            record = {k: (None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                      for k, v in rows.iloc[-1].to_dict().items()}
        except Exception as exc:
            self._audit(entry | {"outcome": type(exc).__name__})
            raise
        self._audit(entry | {"outcome": "returned", "extract_id": newest["extract_id"]})
        record["extract_id"] = newest["extract_id"]
        return record
