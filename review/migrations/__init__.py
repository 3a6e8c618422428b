"""Alembic migrations of the review store (run by review.db.migrate)."""

from __future__ import annotations

from typing import Any


def store_sealer(config: Any, revision: str) -> Any:
    """The sealer of the store being migrated (``review.store.sealing``), for a revision that seals
    or keys values already stored. Asked for only when there are such values, so an empty store
    needs no key; ``review.db.migrate`` names the store (``db_url``) and stays below the store's
    sealing, which these scripts, run at the top, may import."""
    url = config.attributes.get("db_url")
    if url is None:
        raise RuntimeError(f"review store migration {revision} must seal or key stored values: run it through "
                           "review.db.migrate with the data home's keys (set COUNCILMATCH_HOME)")
    from review.store.sealing import sealer_for

    return sealer_for(url)
