"""How a flag's id and evidence hash are made: one recipe, for matching and for the demo flags.

A flag id is stable across nights (the same pair of records under the same match type is
the same flag), which is what lets publishing upsert and keep investigators' decisions
(see ``FLAG_COLUMNS`` in ``councilmatch.contracts``).
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

#: The record references of a flag, in the order its id hashes them.
FLAG_REFS: tuple[str, ...] = ("left_council", "left_dataset", "left_record_id",
                              "right_council", "right_dataset", "right_record_id")


def _sha(text: str, length: int = 20) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def flag_ids(match_type: str | pd.Series, refs: pd.DataFrame) -> pd.Series:
    """sha256 of match type and both record references: the same pair next night is the same flag.

    The one recipe for a flag id: matching raises flags with it, ``synthetic.flags`` makes
    its demo flags with it.
    ``match_type`` is one id for every row, or a Series aligned with ``refs``.
    """
    joined = pd.Series(match_type, index=refs.index)
    for col in FLAG_REFS:
        joined = joined + "\x1f" + refs[col].astype(str)
    return joined.map(_sha)


def evidence_hash(levels: dict[str, str]) -> str:
    """The hash of a flag's comparison levels (not its weights): unchanged evidence, unchanged hash."""
    return _sha(json.dumps(levels, sort_keys=True), 16)
