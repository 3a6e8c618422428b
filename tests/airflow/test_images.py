"""The production image, built for real and smoke-tested (issue 13 item 5).

``deploy/build-images.sh`` builds the Dockerfile with podman on a local Debian base
(debootstrap: the official Airflow image cannot be pulled here) and checks the built image's
filesystem through ``podman mount`` + chroot, as the image's user with the image's environment:
no container is started (``podman run`` cannot start one on these machines). This test runs the
script and checks each smoke result against this checkout, not against fixed strings.

Slow: a clean build (debootstrap, then every dependency from PyPI) takes minutes; local re-runs
reuse the base tarball and podman's layers under ``$COUNCILMATCH_IMAGE_CACHE``
(default ``~/.cache/councilmatch/images``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from councilmatch import airflow_local

REPO = airflow_local.REPO_ROOT
SCRIPT = REPO / "deploy" / "build-images.sh"
CACHE = Path(os.environ.get("COUNCILMATCH_IMAGE_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "councilmatch" / "images")
# The tag docker-compose.yml runs.
TAG = yaml.safe_load((REPO / "docker-compose.yml").read_text())["x-airflow-common"]["image"]

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, podman storage)"
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (Debian package; ./run test installs it)"
    return None


def _commands(help_text: str) -> set[str]:
    """Command names in the Commands panel of a Typer ``--help`` screen."""
    panel = help_text.split("Commands", 1)[-1]
    return set(re.findall(r"^│ ([a-z][a-z0-9-]*)\s", panel, re.M))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the image test cannot run in CI: {missing}")
        pytest.skip(missing)
    report = tmp_path_factory.mktemp("images") / "report.json"
    started = time.monotonic()
    proc = subprocess.run(
        [str(SCRIPT), "--tag", TAG, "--cache", str(CACHE), "--podman-root", str(CACHE / "podman"),
         "--report", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=25 * 60,
    )
    wall = time.monotonic() - started
    print(f"build-images.sh: {wall:.0f} s wall\n{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}")
    assert report.exists(), f"no smoke report (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads(report.read_text())
    print(f"steps (s): {result.get('seconds')}")
    result["exit"] = proc.returncode
    result["stdout"] = proc.stdout
    return result


def test_the_image_is_built_on_the_local_debian_base(smoke: dict) -> None:
    assert smoke["image"] == TAG
    assert re.fullmatch(r"localhost/councilmatch-base:bookworm-[0-9a-f]{16}", smoke["base"]), smoke["base"]
    # The official image's user: uid 50000 in group 0.
    assert smoke["user"] == "50000:0"


def test_councilmatch_help_in_the_image_lists_this_checkouts_commands(smoke: dict) -> None:
    image = smoke["councilmatch_help"]
    assert image["rc"] == 0, image["output"]
    local = subprocess.run([str(Path(sys.executable).parent / "councilmatch"), "--help"],
                           capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "80"}).stdout
    expected = _commands(local)
    assert {"run", "demo", "review"} <= expected, local  # the parser reads real help screens
    assert _commands(image["output"]) == expected, image["output"]


def test_airflow_in_the_image_is_the_locked_version(smoke: dict) -> None:
    result = smoke["airflow_version"]
    assert result["rc"] == 0, result["output"]
    assert result["output"].strip().splitlines()[-1] == version("apache-airflow")


def test_the_workers_executor_imports_in_the_image(smoke: dict) -> None:
    assert smoke["celery_executor"] == "airflow.providers.celery.executors.celery_executor", smoke["imports"]


def test_the_dags_import_with_no_error_in_the_image(smoke: dict) -> None:
    dags = smoke["dags"]
    assert dags["import_errors"] == {}, dags["import_errors"]
    assert {airflow_local.DAG_ID, "retention_purge"} <= set(dags["dag_ids"]), dags["dag_ids"]
    ours = {p.stem for p in (REPO / "dags").glob("*.py")}
    assert len(dags["dag_ids"]) >= len(ours)


def test_the_dag_check_reports_a_broken_dag(smoke: dict) -> None:
    """The same check with a broken file beside the DAGs names that file: it can fail."""
    errors = smoke["canary_dags"]["import_errors"]
    broken = [path for path in errors if path.endswith("/broken_dag.py")]
    assert broken and "broken on purpose" in errors[broken[0]], errors
    assert set(smoke["canary_dags"]["dag_ids"]) == set(smoke["dags"]["dag_ids"])


def test_the_script_passed(smoke: dict) -> None:
    assert smoke["ok"] and smoke["exit"] == 0, smoke["stdout"][-4000:]
    assert "smoke-tested" in smoke["stdout"]
