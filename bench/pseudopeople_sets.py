"""Labelled CSVs from pseudopeople's simulated US records, for `bench_independent.py --pseudopeople`.

pseudopeople (IHME; https://pseudopeople.readthedocs.io) simulates a population and its records
(a census, tax forms, Social Security) with a noise model of its own: typos, OCR and phonetic
errors, nicknames, made-up names, blanks, month and day swapped, a date or an SSN copied from
a household member. Nobody on the team shaped it, so it is a check, never a tuning target, and
it stays outside the repo with every independent set. Run with any Python that has
pseudopeople (its dependencies are not the project's):

    python3.11 -m venv /tmp/pp && /tmp/pp/bin/pip install pseudopeople==1.3.1
    /tmp/pp/bin/python bench/pseudopeople_sets.py --out /tmp/ppdata
    /tmp/pp/bin/python bench/pseudopeople_sets.py --out /tmp/ppdata4 --noise 4   # noisier files
    .venv/bin/python bench/bench_independent.py --pseudopeople /tmp/ppdata

Only the form is prepared: dates to ISO, the forename as first name plus middle name or
initial, the address as number, street, unit, city and state. ``entity`` is the simulant.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def _text(column: pd.Series) -> pd.Series:
    return column.astype("string").fillna("")


def _iso(column: pd.Series, fmt: str) -> pd.Series:
    return pd.to_datetime(_text(column), format=fmt, errors="coerce").dt.strftime("%Y-%m-%d").fillna("")


def _address(frame: pd.DataFrame, prefix: str = "") -> pd.Series:
    parts = [_text(frame[prefix + p]) for p in ("street_number", "street_name", "unit_number", "city", "state")]
    return parts[0].str.cat(parts[1:], sep=" ").str.replace(r"\s+", " ", regex=True).str.strip()


def _people(frame: pd.DataFrame, tag: str, middle: str) -> pd.DataFrame:
    return pd.DataFrame({
        "rec": tag + pd.Series(range(len(frame))).astype(str), "entity": _text(frame["simulant_id"]),
        "forename": (_text(frame["first_name"]) + " " + _text(frame[middle])).str.strip(),
        "surname": _text(frame["last_name"]),
    })


def _scaled(config: dict, factor: float) -> dict:
    """pseudopeople's noise configuration with every cell and row probability times ``factor``
    (at most 0.5); how much of a noisy cell is changed (``token_probability``) is left as it is."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out[key] = _scaled(value, factor)
        elif key in ("cell_probability", "row_probability") and isinstance(value, (int, float)):
            out[key] = min(0.5, value * factor)
        else:
            out[key] = value
    return out


def main() -> None:
    import pseudopeople as psp

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--noise", type=float, default=1.0,
                    help="every cell and row noise probability times this (4: poorly kept files)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def config(dataset: str) -> dict | None:
        return None if args.noise == 1.0 else {dataset: _scaled(psp.get_config()[dataset], args.noise)}

    for name, tag, seed in (("census", "c", args.seed), ("census2", "d", args.seed + 1)):
        c = psp.generate_decennial_census(seed=seed, config=config("decennial_census"))
        _people(c, tag, "middle_initial").assign(
            dob=_iso(c["date_of_birth"], "%m/%d/%Y"), address=_address(c)).to_csv(args.out / f"{name}.csv", index=False)
    s = psp.generate_social_security(seed=args.seed, config=config("social_security"))
    _people(s, "s", "middle_name").assign(dob=_iso(s["date_of_birth"], "%Y%m%d"), ssn=_text(s["ssn"])).to_csv(
        args.out / "ssa.csv", index=False)
    w = psp.generate_taxes_w2_and_1099(seed=args.seed, config=config("taxes_w2_and_1099"))
    _people(w, "w", "middle_initial").assign(address=_address(w, "mailing_address_"), ssn=_text(w["ssn"])).to_csv(
        args.out / "w2.csv", index=False)
    print(f"pseudopeople {psp.__version__}, seed {args.seed}: labelled CSVs in {args.out}")


if __name__ == "__main__":
    main()
