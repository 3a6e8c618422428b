"""The production image, built for real and smoke-tested (issue 13 item 5).

``deploy/build-images.sh`` builds the Dockerfile with podman on a local Debian base
(debootstrap: the official Airflow image cannot be pulled here) and checks the built image's
filesystem through ``podman mount`` + chroot, as the image's user with the image's environment:
no container is started (``podman run`` cannot start one on these machines). This test runs the
script and checks each smoke result against this checkout, not against fixed strings.

Slow: a clean build (debootstrap, then every dependency from PyPI) takes about two minutes
with its scratch space in RAM (/dev/shm); local re-runs reuse the base's tarball under
``$COUNCILMATCH_IMAGE_CACHE`` (default ``~/.cache/councilmatch/images``) and skip debootstrap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pytest
import typer
import yaml

from orchestrate import isolated_airflow as airflow_local

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


def _scratch(fallback: Path) -> Path:
    """A folder in RAM when there is room: podman's storage and debootstrap's root on a disk
    shared with other builds took 2 to 4 times as long (writing and deleting ~1 GB of small files)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 6 * 2**30:
        return Path(tempfile.mkdtemp(prefix="councilmatch-images.", dir=shm))
    return fallback


def _remove(folder: Path) -> None:
    """Remove a scratch folder, unmounting first whatever is still mounted inside it."""
    prefix = str(folder) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the image test cannot run in CI: {missing}")
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("images")
    scratch = _scratch(tmp / "scratch")
    report = tmp / "report.json"
    podman_root = scratch / "podman"
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [str(SCRIPT), "--tag", TAG, "--cache", str(CACHE), "--scratch", str(scratch),
             "--podman-root", str(podman_root), "--report", str(report)],
            cwd=REPO, capture_output=True, text=True, timeout=25 * 60,
        )
        wall = time.monotonic() - started
        print(f"build-images.sh: {wall:.0f} s wall\n{proc.stderr[-3000:]}\n{proc.stdout[-3000:]}")
        assert report.exists(), f"no smoke report (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        result = json.loads(report.read_text())
        print(f"steps (s): {result.get('seconds')}")
        result["exit"] = proc.returncode
        result["stdout"] = proc.stdout
        yield result
    finally:
        # The image and its layers go with the scratch folder (RAM); the base tarball stays cached.
        subprocess.run(["podman", "--root", str(podman_root / "storage"), "--runroot", str(podman_root / "run"),
                        "rmi", "--all", "--force"], capture_output=True, check=False)
        _remove(scratch)


def test_the_image_is_built_on_the_local_debian_base(smoke: dict) -> None:
    assert smoke["image"] == TAG
    assert re.fullmatch(r"localhost/councilmatch-base:bookworm-[0-9a-f]{16}", smoke["base"]), smoke["base"]
    # The official image's user: uid 50000 in group 0.
    assert smoke["user"] == "50000:0"


def test_councilmatch_help_in_the_image_lists_this_checkouts_commands(smoke: dict) -> None:
    image = smoke["councilmatch_help"]
    assert image["rc"] == 0, image["output"]
    from orchestrate.cli import app

    expected = set(typer.main.get_command(app).commands)
    assert {"run", "demo", "review"} <= expected
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
