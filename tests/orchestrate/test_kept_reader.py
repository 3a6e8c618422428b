"""A worker's kept reader (orchestrate.isolate.keep_reader): reused while it succeeds, replaced
as soon as it fails, under the same limits as a fresh child, and gone when its worker dies."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from orchestrate.isolate import IsolatedError, keep_reader, run_isolated, stop_reader


def _pid() -> int:
    return os.getpid()


def _abort() -> None:
    os.abort()


def _hog() -> int:
    return len(bytearray(3 << 30))


def _sleep() -> None:
    time.sleep(60)


def _fail() -> None:
    raise ValueError("row 3, field dob: not a date")


@pytest.fixture
def kept():
    keep_reader()
    try:
        yield
    finally:
        stop_reader()


def test_the_reader_is_kept_between_extracts(kept) -> None:
    first = run_isolated(_pid, what="a")
    assert first != os.getpid()
    assert run_isolated(_pid, what="b") == first


@pytest.mark.parametrize(("fn", "limits", "kind", "words"), [
    (_abort, {}, "crash", "SIGABRT"),
    (_hog, {"memory_mb": 256}, "memory", "ran out of memory"),
    (_sleep, {"timeout_s": 1}, "timeout", "longer than 1 s"),
    (_fail, {}, "ValueError", "field dob"),
])
def test_a_reader_that_failed_is_never_reused(kept, fn, limits, kind, words) -> None:
    before = run_isolated(_pid, what="a")
    with pytest.raises(IsolatedError) as failed:
        run_isolated(fn, what="extract.csv", **limits)
    assert failed.value.kind == kind and words in str(failed.value)
    after = run_isolated(_pid, what="b")
    assert after != before and after != os.getpid()  # a fresh reader, and this process lived on
    assert run_isolated(_pid, what="c") == after


def test_a_call_that_cannot_be_sent_gets_a_fresh_child(kept) -> None:
    kept_pid = run_isolated(_pid, what="a")
    other = run_isolated(lambda: os.getpid(), what="not picklable")  # noqa: PLW0108 - the point
    assert other not in (kept_pid, os.getpid())
    assert run_isolated(_pid, what="b") == kept_pid


def _worker(queue) -> None:
    keep_reader()
    queue.put(run_isolated(_pid, what="a"))
    time.sleep(60)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_reader_ends_with_its_worker() -> None:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    worker = ctx.Process(target=_worker, args=(queue,))
    worker.start()
    reader = queue.get(timeout=30)
    assert _alive(reader)
    os.kill(worker.pid, signal.SIGKILL)  # the OOM killer, say: no clean-up runs
    worker.join()
    deadline = time.monotonic() + 10
    while _alive(reader) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphaned = _alive(reader)
    if orphaned:
        os.kill(reader, signal.SIGKILL)  # so a failing run leaves no process behind
    assert not orphaned


def test_without_keep_reader_every_extract_gets_a_fresh_child() -> None:
    assert run_isolated(_pid, what="a") != run_isolated(_pid, what="b")
