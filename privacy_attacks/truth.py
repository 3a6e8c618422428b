"""Ground truth for scoring (never given to an attack): the vault's clear records, read with the keyring.

Store rows and vault rows of one extract are both in the order of the accepted canonical
frame, so they are joined by (council, data set, extract id, position) - which still holds
when the store's record ids become keyed hashes. The value behind each encoded column is
derived with the production derivations (``anonymise.variants``), so the truth follows
whatever the encodings are made of.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.parquet as pq

from councilmatch.home import Home


def vault_records(home: Home) -> pd.DataFrame:
    """Every vaulted clear record, with its extract id and position in the extract."""
    from anonymise.datakeys import unseal_for_council
    from anonymise.keys import load_keyring

    keyring = load_keyring(home)
    frames = []
    for blob in sorted(home.vault.glob("*/*/*.enc")):
        council = blob.parent.parent.name
        _, plain = unseal_for_council(home, keyring, council, blob.read_bytes(), str(blob))
        frame = pq.read_table(io.BytesIO(plain)).to_pandas()
        frame["extract_id"] = blob.name[: -len(".enc")]
        frame["position"] = range(len(frame))
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"no vault blob under {home.vault}: nothing to score against")
    return pd.concat(frames, ignore_index=True)


def align(store: pd.DataFrame, vault: pd.DataFrame) -> pd.DataFrame:
    """The vault record of each store row (same index as ``store``); raises if any row has none."""
    keys = store[["council", "dataset", "extract_id"]].copy()
    keys["position"] = keys.groupby(["council", "dataset", "extract_id"]).cumcount()
    joined = keys.merge(vault, how="left", on=["council", "dataset", "extract_id", "position"],
                        suffixes=("_store", ""))
    if joined["record_id"].isna().any():
        missing = joined.loc[joined["record_id"].isna(), ["council", "dataset", "extract_id"]].drop_duplicates()
        raise ValueError(f"store rows without a vault record: {missing.head(5).to_dict('records')}")
    joined.index = store.index
    return joined


def derived(truth: pd.DataFrame, column: str) -> pd.Series | None:
    """The clear value behind an encoded store column (None if the column is not a known derivation)."""
    from anonymise.variants import BLOOM_VARIANTS, NEIGHBOURHOOD_VARIANTS, VARIANTS

    encoded = {**BLOOM_VARIANTS, **NEIGHBOURHOOD_VARIANTS}
    variant = VARIANTS.get(column) or (encoded[column][1] if column in encoded else None)
    if variant is None:
        return None
    frame = truth.copy()
    for c in variant.sources:
        if c not in frame.columns:
            frame[c] = pd.NA
    if "dob" in frame.columns:
        frame["dob"] = pd.to_datetime(frame["dob"], errors="coerce")
    values = variant.derive(frame)
    return pd.Series(values.to_numpy(dtype=object), index=truth.index).where(values.notna().to_numpy(), None)


def entry_names(column: str, values: pd.Series | None) -> pd.Series | None:
    """The names a neighbourhood column holds for each record (its derivation's own entries),
    sorted and space-joined: what ``frequency.entry_frequency_attack`` guesses."""
    from anonymise.variants import NEIGHBOURHOOD_VARIANTS

    if values is None:
        return None
    around = NEIGHBOURHOOD_VARIANTS[column][2]
    return values.map(lambda v: " ".join(sorted(around(v))) or None if isinstance(v, str) else None)
