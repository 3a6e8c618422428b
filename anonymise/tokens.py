"""Keyed tokens: the pseudonymised record of a canonical frame.

A token is the first 8 bytes (big-endian, signed) of HMAC-SHA-256 under the
subkey of its purpose, of the normalised value (``anonymise.variants``); 0 means
missing. HMACs are computed once per distinct value and purpose.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from councilmatch.contracts import (
    BLOOM_BYTES, DATE_FIELDS, EDIT_BYTES, ENCODED_BYTES, NON_IDENTIFYING, PSEUDONYMISED_COLUMNS, REFERENCE, TOKEN_COLUMNS,
)

from anonymise.encodings import BloomSettings, bloom_encode, hmac64, neighbourhoods, salt_permute, to_bytes_column
from anonymise.errors import SchemaError
from anonymise.keys import Keyring
from anonymise.variants import (BLOOM_SALTS, BLOOM_VARIANTS, NEIGHBOURHOOD_VARIANTS, VARIANTS, Combinations,
                               derive, shared_derivations)

#: Chosen by measurement (docs/security.md): names with letters + bigrams, k=10,
#: XOR-folded; one-typo surname variants keep Dice ~0.81, unrelated names ~0.30.
BLOOM_SETTINGS: dict[str, BloomSettings] = {
    "bf_forenames": BloomSettings(BLOOM_BYTES["bf_forenames"], k=10, fold=True, unigrams=True),
    "bf_surname": BloomSettings(BLOOM_BYTES["bf_surname"], k=10, fold=True, unigrams=True),
    # an address has 30-60 bigrams: at k=10 its folded filter is ~30% set, and two unrelated
    # addresses reach "similar" on chance bits alone (Dice +0.17 over their clear bigrams);
    # k=5 halves that (docs/benchmarks.md, "Address filters")
    "bf_address": BloomSettings(BLOOM_BYTES["bf_address"], k=5, fold=True, unigrams=False),
}

#: Bump when a token's derivation changes in a way the settings below do not show (a variant's
#: normalisation, a salt): stored extracts of another encoding are re-made from the archive.
#: 2: nicknames fold to the full name most forms point at (anonymise.nicknames). 3: a role where a
#: name should be (BABY, WIFE, THE OCCUPIER) is a placeholder (ingest.placeholders), tokenised as missing.
#: 4: neighbourhoods of every forename word and initial (``nf_*``: a person known by a middle name).
#: 5: the address and premise tokens read alike the characters scanning confuses (B1RD, BIRD).
ENCODING_REVISION = 5


def _encoding_tag() -> str:
    spec = repr((ENCODING_REVISION, sorted(BLOOM_SETTINGS.items()), sorted(EDIT_BYTES.items()), PSEUDONYMISED_COLUMNS))
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


#: What a stored extract's tokens, filters and neighbourhoods were made with (its manifest,
#: row digests and the models trained on it record it): tokens of two encodings do not
#: compare, so a home re-makes its stored extracts after an upgrade that changes it.
ENCODING: str = _encoding_tag()

#: pandas dtypes of the pseudonymised frame (what read_pseudonymised returns too)
NON_IDENTIFYING_DTYPES: dict[str, str] = {
    **{c: "datetime64[ns]" for c in NON_IDENTIFYING if c in DATE_FIELDS},
    "discount": "boolean",
    "amount": "float64",
}


def token_values(values: pd.Series, key: bytes) -> np.ndarray:
    """int64 tokens of normalised values (NA -> 0), one HMAC per distinct value.

    ``values`` are derived per distinct source combination, and many combinations share a
    value (22,598 dates of birth, 90 years), so they are factorised once more here.
    """
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    tokens = hmac64(key, np.asarray(distinct, dtype=object).tolist())
    tokens = np.append(np.where(tokens == 0, 1, tokens), 0)  # 0 is reserved for "missing" (code -1)
    return tokens[codes]


def sources_missing(frame: pd.DataFrame, sources: tuple[str, ...]) -> bool:
    """No row of ``frame`` holds any of ``sources``: whatever is derived from them is missing (a
    test holds every variant to that), so its token is 0 and its encodings all-zero rows without
    deriving anything. Most feeds lack several fields (no NINO, bank or phone on the register),
    and on a re-sent extract's few changed rows deriving them is all fixed cost."""
    return all(c not in frame.columns or frame[c].isna().all() for c in sources)


def token_column(frame: pd.DataFrame, column: str, keyring: Keyring, cache: Combinations | None = None) -> np.ndarray:
    """The int64 token column ``column`` (a key of TOKEN_COLUMNS) for every row of ``frame``."""
    if sources_missing(frame, VARIANTS[column].sources):
        return np.zeros(len(frame), dtype=np.int64)
    codes, values = derive(frame, VARIANTS[column], cache)
    return token_values(values, keyring.subkey(TOKEN_COLUMNS[column]))[codes]


def bloom_column(frame: pd.DataFrame, column: str, keyring: Keyring, cache: Combinations | None = None) -> np.ndarray:
    """(n, nbytes) uint8 Bloom filters for ``column`` (a key of BLOOM_BYTES)."""
    purpose, variant = BLOOM_VARIANTS[column]
    if sources_missing(frame, variant.sources):  # a permuted all-zero filter is all zeros too
        return np.zeros((len(frame), BLOOM_SETTINGS[column].nbytes), dtype=np.uint8)
    codes, values = derive(frame, variant, cache)
    filters = bloom_encode(values, keyring.subkey(purpose), BLOOM_SETTINGS[column])
    if column not in BLOOM_SALTS:
        return filters[codes]
    # each distinct (value, salt) is permuted once: records repeat both (a person's records, a household)
    salt_codes, salts = derive(frame, BLOOM_SALTS[column], cache)
    _, first, inverse = np.unique(codes * np.int64(len(salts) + 1) + salt_codes, return_index=True,
                                  return_inverse=True)
    permuted = salt_permute(filters[codes[first]], salts.to_numpy(dtype=object)[salt_codes[first]],
                            keyring.subkey(purpose + "_salt"))
    return permuted[inverse.reshape(-1)]


def neighbourhood_column(frame: pd.DataFrame, column: str, keyring: Keyring,
                         cache: Combinations | None = None) -> np.ndarray:
    """(n, nbytes) uint8 keyed neighbourhoods for ``column`` (a key of NEIGHBOURHOOD_VARIANTS)."""
    purpose, variant, around = NEIGHBOURHOOD_VARIANTS[column]
    if sources_missing(frame, variant.sources):
        return np.zeros((len(frame), ENCODED_BYTES[column]), dtype=np.uint8)
    codes, values = derive(frame, variant, cache)
    return neighbourhoods(values, keyring.subkey(purpose), ENCODED_BYTES[column] // 4, around)[codes]


def _non_identifying(frame: pd.DataFrame, name: str) -> pd.Series:
    dtype = NON_IDENTIFYING_DTYPES[name]
    if name not in frame.columns:
        return pd.Series(pd.NA if dtype == "boolean" else np.nan, index=frame.index).astype(dtype)
    col = frame[name]
    if dtype.startswith("datetime64"):  # (to_datetime on dates would make a Timestamp of each first)
        return (col if pd.api.types.is_datetime64_any_dtype(col) else pd.to_datetime(col, errors="raise")).astype(dtype)
    return col.astype(dtype)


def pseudonymise(canonical: pd.DataFrame, keyring: Keyring, extract_id: str) -> pd.DataFrame:
    """The pseudonymised frame (exactly PSEUDONYMISED_COLUMNS) of a standardised canonical frame."""
    missing = [c for c in REFERENCE if c not in canonical.columns]
    if missing:
        raise SchemaError(f"canonical frame lacks reference column(s) {missing}")
    frame = canonical.reset_index(drop=True)
    out: dict[str, object] = {c: frame[c].astype(str).astype(object) for c in REFERENCE}
    out["extract_id"] = pd.Series(extract_id, index=frame.index, dtype=object)
    out["key_id"] = pd.Series(keyring.key_id, index=frame.index, dtype=object)
    cache: Combinations = {}
    with shared_derivations():
        for column in TOKEN_COLUMNS:
            out[column] = token_column(frame, column, keyring, cache)
        for column in BLOOM_BYTES:
            out[column] = to_bytes_column(bloom_column(frame, column, keyring, cache), frame.index)
        for column in NEIGHBOURHOOD_VARIANTS:
            out[column] = to_bytes_column(neighbourhood_column(frame, column, keyring, cache), frame.index)
    for column in NON_IDENTIFYING:
        out[column] = _non_identifying(frame, column)
    result = pd.DataFrame(out, index=frame.index)
    return result[list(PSEUDONYMISED_COLUMNS)]
