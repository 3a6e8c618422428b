"""The set-up command leaves every module compiled, so no new process compiles them again.

Where ``PYTHONDONTWRITEBYTECODE`` is set (this machine's environment sets it, as many CI images
do), Python writes no ``.pyc`` file itself: without the ones ``./run`` makes, every
``councilmatch`` command, Airflow task and test subprocess compiled pandas, pyarrow, Airflow and
the project from source again (5-6 s a process, measured in docs/operations.md, "Bytecode").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import importlib.util, json, os, sys
import orchestrate.pipeline, matching.run, review.app, airflow.sdk  # what a night's processes import
roots = [os.path.realpath(p) for p in sys.argv[1:]]
missing = []
for name, module in list(sys.modules.items()):
    source = getattr(module, "__file__", None)
    if not source or not source.endswith(".py") or not any(os.path.realpath(source).startswith(r) for r in roots):
        continue
    cached = importlib.util.cache_from_source(source)
    if not os.path.exists(cached) or os.path.getmtime(cached) < os.path.getmtime(source):
        missing.append(name)
print(json.dumps(sorted(missing)))
"""


def test_every_module_a_night_imports_is_compiled_already() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    out = subprocess.run([sys.executable, "-c", _PROBE, str(site), str(ROOT)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    missing = json.loads(out.stdout.strip().splitlines()[-1])
    assert missing == [], f"{len(missing)} modules have no current .pyc (run ./run again): {missing[:10]}"
