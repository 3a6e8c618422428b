"""Engines, sessions and migrations for the review store.

SQLite (the default, ``Home.review_db_url``) and PostgreSQL (``postgresql+psycopg://``)
behave alike here: write transactions on SQLite start with ``BEGIN IMMEDIATE`` so
two writers queue on the database lock instead of failing half-way; on PostgreSQL
the audit head row is locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def normalise_url(db_url: str) -> str:
    """Accept plain ``postgresql://`` / ``postgres://`` URLs and use the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if db_url.startswith(prefix):
            return "postgresql+psycopg://" + db_url[len(prefix):]
    return db_url


def fresh_database(server_url: str, name: str) -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database on ``server_url`` (for tests and benchmarks), and its drop."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (its ``-wal`` and ``-shm`` files take the
    database's mode), and tighten an older, world-readable store: it holds password hashes,
    notes and the audit trail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except FileNotFoundError:
            pass


@lru_cache(maxsize=None)
def engine_for(db_url: str) -> Engine:
    url = normalise_url(db_url)
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise ValueError("the review store needs a file (sqlite:///path/review.db), not an in-memory database")
    _private_sqlite_file(Path(url.removeprefix("sqlite:///")))
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           pool_size=40, max_overflow=60)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("review_write") else "BEGIN")

    return engine


def migrate(db_url: str) -> None:
    """Bring the schema to the newest Alembic revision (safe to call on every start)."""
    url = normalise_url(db_url)
    with _migrate_lock:
        if url in _migrated:
            return
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["db_url"] = url  # a revision that seals stored values asks the store for its sealer
        with engine_for(url).connect() as conn:
            conn = conn.execution_options(review_write=True)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        if url.startswith("sqlite"):  # fold the migration's pages into the file (no old values left in the WAL)
            with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        _migrated.add(url)


@contextmanager
def reading(db_url: str) -> Iterator[Session]:
    with Session(engine_for(normalise_url(db_url)), expire_on_commit=False) as session:
        yield session


@lru_cache(maxsize=None)
def _sqlite_write_lock(url: str) -> threading.Lock:
    return threading.Lock()


@contextmanager
def writing(db_url: str) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error.

    On SQLite, writers of this process also queue on a lock: SQLite's own busy
    handler polls with growing sleeps, which under load turns into long tail latency.
    """
    url = normalise_url(db_url)
    engine = engine_for(url)
    lock = _sqlite_write_lock(url) if url.startswith("sqlite") else None
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(review_write=True)
            with Session(bind=conn, expire_on_commit=False) as session:
                with session.begin():
                    yield session
    finally:
        if lock is not None:
            lock.release()


def after_bulk_write(db_url: str) -> None:
    """After a publish: on SQLite fold the write-ahead log into the database (so the web
    app's next small commit does not inherit a multi-megabyte checkpoint); on PostgreSQL
    refresh planner statistics (so the next publish's id look-ups use the primary key)."""
    url = normalise_url(db_url)
    with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if url.startswith("sqlite"):
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.exec_driver_sql("ANALYZE review_items")
            conn.exec_driver_sql("ANALYZE council_reviews")
