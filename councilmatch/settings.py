"""Per-home settings (``<home>/settings.yaml``), validated; every key has a safe default.

Environment variables (secrets, per-process choices) are ``councilmatch.environment`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from councilmatch.fileio import load_yaml_model
from councilmatch.home import Home


class Retention(BaseModel):
    """Days to keep each kind of sensitive data before the retention DAG purges it.

    At least one day: a negative or zero period would purge what tonight's run still needs."""

    model_config = ConfigDict(extra="forbid")
    raw_archive_days: int = Field(default=30, ge=1)
    quarantine_days: int = Field(default=90, ge=1)
    vault_days: int = Field(default=400, ge=1)
    closed_flag_days: int = Field(default=730, ge=1)
    key_versions_days: int = Field(default=400, ge=1)


class Models(BaseModel):
    """When a match type's saved model is re-trained (``models/<match type>.json`` in the store).

    Between re-trainings nights reuse the model and link only what changed."""

    model_config = ConfigDict(extra="forbid")
    #: re-train a model once it is this many days old (by run date)
    retrain_days: int = Field(default=7, ge=1)
    #: re-train when the total-variation distance between the agreement patterns of tonight's
    #: new candidate pairs and those the model was trained on reaches this
    drift_threshold: float = Field(default=0.2, gt=0, le=1)
    #: ... measured on at least this many new candidate pairs (fewer say too little)
    drift_min_pairs: int = Field(default=500, ge=1)
    #: training reads at most about this many records of the pool (a sample past it), so the
    #: plan task's memory is bounded whatever the pool's size (matching.run.TRAINING_MAX_RECORDS)
    training_max_records: int = Field(default=1_000_000, ge=10_000)


class IngestSettings(BaseModel):
    """How each feed's reader is isolated (``orchestrate.isolate``); size limits are per feed."""

    model_config = ConfigDict(extra="forbid")
    #: Run each extract's reader in its own process, so an abort fails only that feed.
    isolate_readers: bool = True
    #: Address space the reader process may add to its parent's (MB); 0 = no limit.
    reader_memory_mb: int = Field(default=16384, ge=0)
    #: Wall time a reader may take (seconds); 0 = no limit.
    reader_timeout_seconds: int = Field(default=3600, ge=0)


class HomeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A production home: refuses a development key-encryption key (as COUNCILMATCH_PRODUCTION=1 does).
    production: bool = False
    #: What happens to a raw extract once it is pseudonymised.
    raw_extracts: Literal["archive", "delete", "keep"] = "archive"
    #: Link shards per match type (each one an Airflow mapped task).
    link_shards: int = Field(default=4, ge=1, le=256)
    #: Processes ``councilmatch run`` spreads feeds and link shards over (0: one per core, at most
    #: 8). The Airflow DAG spreads them over its workers instead.
    workers: int = Field(default=0, ge=0, le=64)
    retention: Retention = Field(default_factory=Retention)
    models: Models = Field(default_factory=Models)
    ingest: IngestSettings = Field(default_factory=IngestSettings)


#: settings.yaml's text and what it parsed to, per file: every encrypted read and write asks
#: whether the home is production (``anonymise.kek.is_production``), a thousand times a night
_PARSED: dict[Path, tuple[bytes, HomeSettings]] = {}


def load_settings(home: Home) -> HomeSettings:
    """The home's settings; ``councilmatch.fileio.YamlModelError`` names the file, line and key of a mistake.
    The file is read every time; it is parsed again only when its text changed."""
    path = home.settings_file
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return HomeSettings()
    kept = _PARSED.get(path)
    if kept is None or kept[0] != text:
        kept = _PARSED[path] = (text, load_yaml_model(path, HomeSettings, text=text.decode("utf-8")))
    return kept[1].model_copy(deep=True)  # callers may change their copy
