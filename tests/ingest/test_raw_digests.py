"""Raw-row digests: what lets a re-sent extract skip its unchanged rows (ingest.extract)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest.extract import raw_row_digests

RESOLVED = {"record_id": ["Id"], "surname": ["Surname"], "address_lines": ["Addr 1", "Addr 2"]}


def _frame(rows: list[list[str | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["Id", "Surname", "Addr 1", "Addr 2", "Unmapped"]).astype("string[pyarrow]")


def _digests(frame: pd.DataFrame, key: bytes = b"k" * 32, context: str = "feed v1",
             duplicate: np.ndarray | None = None) -> np.ndarray:
    dup = np.zeros(len(frame), dtype=bool) if duplicate is None else duplicate
    return raw_row_digests(frame, RESOLVED, dup, key, context)


BASE = [["1", "Smith", "1 High St", "Camden", "x"], ["2", "Jones", "2 Low Rd", None, "y"]]


def test_every_mapped_cell_changes_the_digest_and_unmapped_cells_do_not() -> None:
    base = _digests(_frame(BASE))
    for col in range(4):
        rows = [list(r) for r in BASE]
        rows[0][col] = (rows[0][col] or "") + "!"
        d = _digests(_frame(rows))
        assert d[0] != base[0] and d[1] == base[1], col
    rows = [list(r) for r in BASE]
    rows[0][4] = "changed"
    assert (_digests(_frame(rows)) == base).all()


def test_keyed_by_the_key_and_the_feed_context() -> None:
    base = _digests(_frame(BASE))
    assert not (_digests(_frame(BASE), key=b"j" * 32) == base).any()
    assert not (_digests(_frame(BASE), context="feed v2") == base).any()


def test_duplicate_flag_is_part_of_the_digest() -> None:
    base = _digests(_frame(BASE))
    d = _digests(_frame(BASE), duplicate=np.array([False, True]))
    assert d[0] == base[0] and d[1] != base[1]


def test_blank_and_missing_cells_digest_alike_as_they_map_alike() -> None:
    rows = [list(r) for r in BASE]
    rows[1][3] = ""
    assert (_digests(_frame(rows)) == _digests(_frame(BASE))).all()


def test_a_cell_holding_the_separator_cannot_pass_for_another_row() -> None:
    """Shifting the separator between cells would join to the same text: such rows never match."""
    a = _frame([["1", "Smith\x1f1 High St", "", "Camden", "x"]])
    b = _frame([["1", "Smith", "1 High St", "Camden", "x"]])
    assert _digests(a)[0] == 0 and _digests(b)[0] != 0
