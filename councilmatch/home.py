"""The data home: one folder that holds every stage's inputs and outputs.

Every command takes ``--home DIR``; without it the ``COUNCILMATCH_HOME``
environment variable is used, else ``./councilmatch-data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from councilmatch.environment import environment
from councilmatch.safepath import path_inside, safe_name

DEFAULT_HOME_NAME = "councilmatch-data"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, home: Path | str | None = None) -> "Home":
        """``--home`` wins, then ``COUNCILMATCH_HOME``, then ``./councilmatch-data``."""
        chosen = home or environment().home or Path.cwd() / DEFAULT_HOME_NAME
        return cls(Path(chosen).expanduser().resolve())

    # Raw side (clear data; never scanned by the privacy test).
    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def truth(self) -> Path:
        """Generator ground truth. No pipeline stage ever reads it."""
        return self.root / "truth"

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        """Encrypted archive of raw extracts after ingest (per retention setting)."""
        return self.root / "archive"

    # Configuration.
    @property
    def feeds(self) -> Path:
        return self.root / "feeds"

    @property
    def matchtypes(self) -> Path:
        """Home-specific match types; added to (and overriding) the shipped ones."""
        return self.root / "matchtypes"

    @property
    def keys(self) -> Path:
        """Encrypted keyring (and, for the embedded default only, a dev KEK file)."""
        return self.root / "keys"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.yaml"

    # Pseudonymised side (must never hold a clear identifier).
    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def pseudonymised(self) -> Path:
        """store/pseudonymised/<dataset>/<council>/<extract_id>.parquet"""
        return self.store / "pseudonymised"

    @property
    def manifests(self) -> Path:
        """store/manifests/<council>/<dataset>/<extract_id>.json"""
        return self.store / "manifests"

    @property
    def flags(self) -> Path:
        """store/flags/<run_id>.parquet"""
        return self.store / "flags"

    @property
    def runs(self) -> Path:
        """store/runs/<run_id>/: shard outputs, model parameters, run state."""
        return self.store / "runs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def review_db_url(self) -> str:
        """SQLite by default; ``COUNCILMATCH_REVIEW_DB_URL`` points at PostgreSQL in production."""
        return environment().review_db_url or f"sqlite:///{self.root / 'review.db'}"

    def pseudonymised_path(self, dataset: str, council: str, extract_id: str) -> Path:
        """Raises ``UnsafePathError`` for a name that could leave the store (e.g. an at-source ``../``)."""
        return path_inside(self.pseudonymised, safe_name(dataset, "dataset"), safe_name(council, "council"),
                           safe_name(extract_id, "extract id") + ".parquet", what="pseudonymised file")

    def flags_path(self, run_id: str) -> Path:
        return path_inside(self.flags, safe_name(run_id, "run id") + ".parquet", what="flags file")

    def ensure(self) -> "Home":
        for p in (self.landing, self.feeds, self.store, self.vault, self.quarantine, self.logs):
            p.mkdir(parents=True, exist_ok=True)
        return self
