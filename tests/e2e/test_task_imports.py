"""A DAG task is a fresh process that imports the night's functions before it runs: what the
module brings with it is paid by every feed and shard task of every night. Training's pair
sampler (recordlinkage, which imports scikit-learn and SciPy) and the review store (SQLAlchemy,
Alembic) were imported by all of them, 1.5 s of the 2.1 s ``import orchestrate.pipeline`` took;
now only the plan task (training) and the publish task load them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestrate import pipeline

ROOT = Path(__file__).resolve().parents[2]
TRAINING = {"recordlinkage", "sklearn", "scipy"}
REVIEW_STORE = {"sqlalchemy", "alembic"}
RUN_ID = "20261101T020000"


def _loaded_after(code: str) -> set[str]:
    """The top-level packages a new interpreter holds after running ``code``."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_night_loads_neither_training_nor_the_review_store() -> None:
    loaded = _loaded_after("import orchestrate.pipeline")
    assert "pandas" in loaded and "pyarrow" in loaded  # the probe sees what was imported
    assert not loaded & (TRAINING | REVIEW_STORE), loaded & (TRAINING | REVIEW_STORE)


def test_feed_and_shard_tasks_run_without_them_and_publish_loads_the_store(tmp_path: Path, generated_home) -> None:
    home, _ = generated_home(tmp_path, 300, 5)
    root = str(home.root)
    feeds = pipeline.discover_feeds(home)
    loaded = _loaded_after("from orchestrate import pipeline\n"
                           f"for feed in {feeds!r}:\n"
                           f"    assert pipeline.ingest_feed({root!r}, feed, {RUN_ID!r})['status'] == 'ingested'\n")
    assert not loaded & (TRAINING | REVIEW_STORE), loaded & (TRAINING | REVIEW_STORE)

    shards = pipeline.plan_link(home, RUN_ID)  # training: here it may load recordlinkage
    assert shards
    calls = "".join(f"pipeline.link_shard({root!r}, {RUN_ID!r}, {s['match_type']!r}, {s['shard']}, {s['shards']})\n"
                    for s in shards)
    loaded = _loaded_after("from orchestrate import pipeline\n" + calls)
    assert not loaded & (TRAINING | REVIEW_STORE), loaded & (TRAINING | REVIEW_STORE)

    loaded = _loaded_after(f"from orchestrate import pipeline\npipeline.publish_run({root!r}, {RUN_ID!r})\n")
    assert REVIEW_STORE <= loaded
