"""Pseudonymised store: atomic Parquet with fixed-size binary blooms and key id metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anonymise import at_rest
from anonymise.errors import SchemaError, UnknownKeyError
from anonymise.keys import load_keyring, rotate_keys
from anonymise.minimise import minimise
from anonymise.pseudonymised import check_key_ids, file_metadata, read_pseudonymised, write_pseudonymised
from anonymise.tokens import pseudonymise
from councilmatch.contracts import BLOOM_BYTES, TOKEN_COLUMNS
from matching.minimisation import store_policy


@pytest.fixture
def frame(people, helpers, keyring):
    return pseudonymise(helpers.canonical_frame(people[:12]), keyring, "payroll_1-abc")


def test_write_read_round_trip(home, frame, helpers) -> None:
    path = write_pseudonymised(home, frame, store_policy(home))
    assert path == home.pseudonymised_path("payroll", helpers.CAMDEN, "payroll_1-abc")
    with pytest.raises(OSError):  # encrypted at rest: no schema without the keys
        pq.read_schema(path)
    schema = at_rest.read_table(path, home=home).schema
    for c, n in BLOOM_BYTES.items():
        assert schema.field(c).type == pa.binary(n)
    for c in TOKEN_COLUMNS:
        assert schema.field(c).type == pa.int64()
    meta = file_metadata(path)
    assert meta["key_id"] == "k1" and meta["schema_version"] == "1" and meta["rows"] == 12
    stored = minimise(frame, home, store_policy(home))  # the store keeps the minimised frame (test_minimise.py)
    pd.testing.assert_frame_equal(read_pseudonymised(path), stored)
    assert not list(path.parent.glob(".*.tmp"))  # no temporary left behind
    mtime_bytes = path.read_bytes()
    write_pseudonymised(home, frame, store_policy(home))  # idempotent
    pd.testing.assert_frame_equal(read_pseudonymised(path), stored)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".index"]  # its record index
    assert len(mtime_bytes) > 0


def test_contract_violations_are_refused(home, frame) -> None:
    with pytest.raises(SchemaError, match="extra \\['surname'\\]"):
        write_pseudonymised(home, frame.assign(surname="SMITH"), store_policy(home))
    with pytest.raises(SchemaError, match="missing \\['t_nino'\\]"):
        write_pseudonymised(home, frame.drop(columns=["t_nino"]), store_policy(home))
    with pytest.raises(SchemaError, match="one council"):
        mixed = frame.copy()
        mixed.loc[0, "council"] = "E09000012"
        write_pseudonymised(home, mixed, store_policy(home))
    with pytest.raises(SchemaError, match="int64"):
        write_pseudonymised(home, frame.assign(t_nino=frame["t_nino"].astype(str)), store_policy(home))
    short = frame.copy()
    short["bf_surname"] = [b"\x01" * 10] * len(short)
    with pytest.raises(SchemaError, match="does not fit"):
        write_pseudonymised(home, short, store_policy(home))
    assert not home.pseudonymised.exists() or not list(home.pseudonymised.rglob("*.parquet"))


def test_check_key_ids(home, frame, people, helpers) -> None:
    ring = load_keyring(home)
    assert check_key_ids([frame, frame], ring) == "k1"
    rotate_keys(home)
    ring2 = load_keyring(home)
    newer = pseudonymise(helpers.canonical_frame(people[:3]), ring2, "x2")
    with pytest.raises(UnknownKeyError, match="mixes key ids \\['k1', 'k2'\\]"):
        check_key_ids([frame, newer], ring2)
    with pytest.raises(UnknownKeyError, match="does not hold"):
        check_key_ids([frame.assign(key_id="k7")], ring2)


def _hashed(path, home) -> pd.DataFrame:
    """An extract's record index the long way: every stored row hashed as the night reads it."""
    from anonymise.record_index import index_frame, ref_keys, row_hashes

    stored = read_pseudonymised(path, home)
    return index_frame(ref_keys(stored["council"], stored["dataset"], stored["record_id"]), row_hashes(stored))


def test_an_extract_keeps_its_record_index_and_only_while_it_is_the_extract_written(home, frame, people, helpers,
                                                                                   keyring) -> None:
    """The night reads an extract's kept index instead of hashing its rows (anonymise.record_index):
    it must be exactly the hashes of the rows as read, and never be used for a file rewritten since."""
    from anonymise.pseudonymised import kept_index
    from anonymise.record_index import index_path, write_index

    path = write_pseudonymised(home, frame, store_policy(home))
    kept = kept_index(path, home)
    assert kept is not None and len(kept) == len(frame)
    pd.testing.assert_frame_equal(kept, _hashed(path, home))
    # another writer rewrites the extract (same rows, no index named in its metadata): not used
    at_rest.write_table(path, at_rest.read_table(path, home=home).replace_schema_metadata(None), home)
    assert kept_index(path, home) is None
    # written again, then its index replaced by another extract's, or by its own rows out of order
    path = write_pseudonymised(home, frame, store_policy(home))
    assert kept_index(path, home) is not None
    other = write_pseudonymised(home, pseudonymise(helpers.canonical_frame(people[12:24]), keyring, "payroll_2-def"),
                                store_policy(home))
    write_index(path, kept_index(other, home), home)
    assert kept_index(path, home) is None
    write_index(path, _hashed(path, home).iloc[::-1].reset_index(drop=True), home)
    assert kept_index(path, home) is None
    write_index(path, _hashed(path, home), home)  # its own, as written: used again
    assert kept_index(path, home) is not None
    index_path(path).write_bytes(b"not parquet")
    assert kept_index(path, home) is None


def test_the_pool_index_from_kept_indexes_equals_hashing_every_row(home, people, helpers, keyring) -> None:
    """A data set of several extracts, some with a kept index, one without (written before indexes
    were kept): the record index is the same as hashing every row, and so are its reference keys."""
    from matching import incremental as inc
    from matching.run import newest_extracts, read_inputs

    policy = store_policy(home)
    for i, council in enumerate(("E09000007", "E09000012", "E09000019")):
        part = pseudonymise(helpers.canonical_frame(people[12 * i:12 * i + 12], council=council, prefix=f"C{i}-"),
                            keyring, f"payroll_{i}-abc")
        path = write_pseudonymised(home, part, policy)
        if i == 1:  # kept no index: hashed from its rows
            from anonymise.record_index import index_path
            index_path(path).unlink()
    files = newest_extracts(home)
    data = read_inputs(home, files)
    whole = inc.record_index(read_inputs(home, files))
    by_files = inc.record_index(data, {"payroll": files}, home)
    assert len(whole) == 36
    pd.testing.assert_frame_equal(by_files, whole)
    assert (inc.frame_ref_keys(data["payroll"]).view("int64") == whole["ref"].to_numpy()).all()


def test_rows_whose_index_is_known_are_not_hashed_again(home, frame) -> None:
    """A re-sent extract passes its unchanged rows' index rows (from the feed's last extract):
    those are kept as given, the others hashed, in the extract's row order."""
    from anonymise.pseudonymised import kept_index

    first = write_pseudonymised(home, frame, store_policy(home))
    hashed = kept_index(first, home)
    again = frame.assign(extract_id="payroll_2-def")
    positions = np.array([1, 4, 5])
    known = hashed.iloc[positions].reset_index(drop=True)
    path = write_pseudonymised(home, again, store_policy(home), (positions, known))
    pd.testing.assert_frame_equal(kept_index(path, home), hashed)  # the extract id is not hashed
    marked = known.assign(row=known["row"] + 1)  # what is passed is what is kept: nothing re-hashed
    path = write_pseudonymised(home, again, store_policy(home), (positions, marked))
    kept = kept_index(path, home)
    assert (kept["row"].to_numpy()[positions] == hashed["row"].to_numpy()[positions] + 1).all()
    rest = np.setdiff1d(np.arange(len(frame)), positions)
    pd.testing.assert_frame_equal(kept.iloc[rest], hashed.iloc[rest])
