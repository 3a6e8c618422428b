"""``councilmatch run`` spreads feeds and link shards over the machine's cores: the night's results
must not depend on how many processes did the work, and a worker that dies must lose nothing."""

from __future__ import annotations

import os
import shutil
import time

import pandas as pd
import pytest

from anonymise import at_rest
from anonymise.keys import init_keys
from anonymise.minimise import ref_key
from councilmatch.home import Home
from orchestrate import pipeline
from orchestrate.parallel import run_tasks
from synthetic import generate

RUN = "20261101T020000"


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _die_unless_in(parent: int, value: int) -> int:
    """Kills the worker process it runs in (as the OOM killer would); returns in the parent."""
    if os.getpid() != parent:
        os._exit(1)
    return value * 10


def test_tasks_spread_over_the_workers_and_keep_their_order() -> None:
    pids = run_tasks(_pid_after, [(0.3,)] * 6, workers=2)
    assert len(pids) == 6
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_a_dead_worker_loses_no_task() -> None:
    # every worker dies on its first task; the broken pool's tasks are run again here, in order
    assert run_tasks(_die_unless_in, [(os.getpid(), i) for i in range(5)], workers=2) == [0, 10, 20, 30, 40]


@pytest.fixture(scope="module")
def two_homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, Home]:
    root = tmp_path_factory.mktemp("parallel")
    home = Home.resolve(root / "parallel")
    generate(home, boroughs=2, people=800, seed=5)
    init_keys(home)
    ref_key(home)  # made on first use: made once here, both homes name records alike
    single = root / "single"
    shutil.copytree(home.root, single)
    return home, Home.resolve(single)


def test_a_night_on_two_processes_equals_one_on_one(two_homes: tuple[Home, Home]) -> None:
    parallel, single = two_homes
    a = pipeline.run_all(parallel, run_id=RUN, workers=2)
    b = pipeline.run_all(single, run_id=RUN, workers=1)

    def outcomes(summary: dict, home: Home) -> list[dict]:
        return [{**{k: v for k, v in f.items() if k != "seconds"}, "path": os.path.relpath(f["path"], home.root)}
                for f in summary["feeds"]]

    assert [f["feed_id"] for f in a["feeds"]] == sorted(f["feed_id"] for f in a["feeds"])
    assert outcomes(a, parallel) == outcomes(b, single)
    assert all(f["status"] == "ingested" for f in a["feeds"])
    flags_a = at_rest.read_frame(parallel.flags_path(RUN), home=parallel)
    flags_b = at_rest.read_frame(single.flags_path(RUN), home=single)
    assert len(flags_a) > 10
    pd.testing.assert_frame_equal(flags_a, flags_b)
    # models trained on two threads (sharing the run's pairs) are the very models one thread trains
    models_a = _models(parallel)
    assert len(models_a) >= 5
    assert models_a == _models(single)


def _models(home: Home) -> dict[str, dict]:
    """The saved model of every match type, less when it was written and the hash of its encrypted
    term-frequency file (a fresh nonce every write)."""
    out = {}
    for path in sorted((home.store / "models").glob("*.json")):
        body = at_rest.read_json(path, home)
        out[path.name] = {k: v for k, v in body.items() if k not in ("trained_at", "trained_on", "tf_sha256")}
    return out
