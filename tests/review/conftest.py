"""Fixtures for the review tests: a review store on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``COUNCILMATCH_TEST_PG_URL`` (CI) or, when that is unset and
Debian's binaries exist, from a throwaway server started once per test session
(``pg_server.py``). Each test gets its own fresh database.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from review import audit
from review.auth import add_user
from review.db import engine_for, fresh_database, normalise_url, writing
from synthetic.flags import make_flags
from review.store import publish_flags

HERE = Path(__file__).parent
CAMDEN, HACKNEY, ISLINGTON = "E09000007", "E09000012", "E09000019"
PASSWORD = "correct horse battery"


def with_keys(root: Path) -> Path:
    """A keyring (development KEK) in ``root``: the review store seals notes, amounts and evidence
    under the at-rest data key of the home its audit key lives in."""
    from anonymise.keys import init_keys
    from councilmatch.home import Home

    init_keys(Home(root), dev_kek=True)
    return root


def _load_pg_server():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("review_pg_server", HERE / "pg_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pg_admin_url():  # noqa: ANN201
    """URL of a PostgreSQL server we may create databases on, or None."""
    url = os.environ.get("COUNCILMATCH_TEST_PG_URL")
    if url:
        yield normalise_url(url)
        return
    pg = _load_pg_server()
    if pg.binaries() is None:
        yield None
        return
    server = pg.PgServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, pg_admin_url):  # noqa: ANN001, ANN201
    """A fresh, empty review database URL (not yet migrated)."""
    with_keys(tmp_path)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'review.db'}"
        yield url
        engine_for(url).dispose()
        return
    if pg_admin_url is None:
        pytest.skip("no PostgreSQL: set COUNCILMATCH_TEST_PG_URL or install postgresql")
    url, drop = fresh_database(pg_admin_url, "review_" + uuid.uuid4().hex[:12])
    audit.bind(url, tmp_path)  # the audit key and checkpoints: outside the database
    yield url
    drop()


@pytest.fixture
def sqlite_url(tmp_path):  # noqa: ANN001, ANN201
    with_keys(tmp_path)
    url = f"sqlite:///{tmp_path / 'review.db'}"
    yield url
    engine_for(url).dispose()


@pytest.fixture
def flags():  # noqa: ANN201
    """90 synthetic flags across Camden, Hackney and Islington (plus central)."""
    return make_flags(90, [CAMDEN, HACKNEY, ISLINGTON], run_id="2026-11-20", seed=7)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):  # noqa: ANN001, ANN201
    """Flags and users once per module (Argon2 hashing is deliberately slow); each test copies it."""
    path = with_keys(tmp_path_factory.mktemp("template")) / "review.db"
    url = f"sqlite:///{path}"
    publish_flags(url, make_flags(90, [CAMDEN, HACKNEY, ISLINGTON], run_id="2026-11-20", seed=7))
    add_users(url, ("cam_inv", CAMDEN, "investigator"), ("cam_sup", CAMDEN, "supervisor"),
              ("cam_inv2", CAMDEN, "investigator"), ("hack_inv", HACKNEY, "investigator"),
              ("admin", ISLINGTON, "admin"))
    engine_for(url).dispose()
    return path


def copy_store(template: Path, target_dir: Path) -> str:
    """A copy of a SQLite review store with its audit key and checkpoints (which live beside it)."""
    shutil.copy(template, target_dir / "review.db")
    shutil.copytree(template.parent / "keys", target_dir / "keys", dirs_exist_ok=True)
    if (template.parent / audit.CHECKPOINTS_FILE).exists():
        shutil.copy(template.parent / audit.CHECKPOINTS_FILE, target_dir / audit.CHECKPOINTS_FILE)
    return f"sqlite:///{target_dir / 'review.db'}"


def add_users(db_url: str, *specs: tuple[str, str, str]) -> None:
    from review.db import migrate
    migrate(db_url)
    with writing(db_url) as session:
        for username, council, role in specs:
            add_user(session, username=username, council=council, role=role, password=PASSWORD, actor="test")


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):  # noqa: ANN001, ANN201
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False)


@pytest.fixture
def h():  # noqa: ANN201
    """Helpers and constants (tests cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace
    return SimpleNamespace(add_users=add_users, csrf_of=csrf_of, sign_in=sign_in, PASSWORD=PASSWORD,
                           copy_store=copy_store, with_keys=with_keys,
                           CAMDEN=CAMDEN, HACKNEY=HACKNEY, ISLINGTON=ISLINGTON)
