"""The benchmarks' directly generated store rows must keep to the store's contract: when the
contract gains a column, a benchmark that writes rows without it fails only when someone runs it
by hand, long after (bench_scaleout could not generate for a session after ed_nino was added)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_linkage import synthetic_tenancies  # noqa: E402

from anonymise.pseudonymised import to_table, validate_frame  # noqa: E402
from councilmatch.contracts import PSEUDONYMISED_COLUMNS  # noqa: E402


def test_synthetic_tenancies_fit_the_store_contract() -> None:
    frame = synthetic_tenancies(2_000, councils=4, seed=3)
    validate_frame(frame)
    assert list(to_table(frame).schema.names) == list(PSEUDONYMISED_COLUMNS)
    assert frame["ed_nino"].map(lambda b: any(b)).mean() > 0.3  # the people who hold a NINO
