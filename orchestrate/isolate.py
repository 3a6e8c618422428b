"""Run a reader of council files in a child process, so that even an abort fails only its feed.

A hostile extract can make a native reader (the XLSX reader is Rust, the CSV and
Parquet readers C++) ask for absurd memory and abort the whole process with
SIGABRT, which no ``except`` can catch. ``run_isolated`` forks a child that reads
and validates one extract under resource limits and sends the result back over a
pipe (memory only: the result holds clear data, so it never touches the disk):

* address space: the parent's current size plus ``memory_mb`` (``RLIMIT_AS``);
* no core file (``RLIMIT_CORE`` 0): a core dump of a reader would hold clear data;
* wall time: the child is killed after ``timeout_s``.

The parent does every write (vault, quarantine, store, manifest) after the child
returned, in one staged commit (``councilmatch.fileio``), so a child that dies
leaves nothing behind. ``fork`` keeps the per-feed cost to milliseconds (the
modules are already imported), in ``councilmatch run`` as in an Airflow task.
"""

from __future__ import annotations

import contextlib

import multiprocessing as mp
import re
import resource
import signal
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class IsolatedError(RuntimeError):
    """The isolated reader raised, ran out of memory or time, or was killed; the message says which."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            found = re.search(r"VmSize:\s+(\d+)\s+kB", f.read())
        return int(found.group(1)) * 1024 if found else 0
    except OSError:
        return 0


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict, limit_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    try:
        payload: tuple = ("ok", fn(*args, **kwargs))
    except MemoryError:
        payload = ("error", "memory", "ran out of memory (the reader's memory limit, settings.yaml ingest.reader_memory_mb)")
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent as text
        payload = ("error", type(exc).__name__, str(exc))
    try:
        conn.send(payload)
    except MemoryError:
        conn.send(("error", "memory", "ran out of memory sending the result back"))
    conn.close()


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "an unknown cause"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


@contextlib.contextmanager
def _may_have_children() -> Iterator[None]:
    """Let a daemonic process (a Celery worker's task process) start the reader child.

    multiprocessing refuses children to daemonic processes so that they cannot be orphaned when
    the daemon exits; the reader child is always joined (or killed) before ``run_isolated``
    returns, so that cannot happen here. Without this, every feed fails on a Celery worker.
    """
    config = mp.current_process()._config  # noqa: SLF001 - the only switch multiprocessing offers
    daemonic = config.get("daemon", False)
    config["daemon"] = False
    try:
        yield
    finally:
        config["daemon"] = daemonic


def run_isolated(fn: Callable[..., T], *args: Any, what: str, memory_mb: int = 0, timeout_s: float = 0,
                 **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a forked child under the limits; its result, or ``IsolatedError``.

    ``what`` names the work in messages (e.g. the extract's path). ``memory_mb`` 0 and
    ``timeout_s`` 0 mean no limit.
    """
    ctx = mp.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    limit = _vm_bytes() + memory_mb * (1 << 20) if memory_mb else 0
    child = ctx.Process(target=_child, args=(sender, fn, args, kwargs, limit), daemon=False,
                        name="councilmatch-reader")
    with _may_have_children():
        child.start()
    sender.close()
    payload = None
    timed_out = False
    try:
        if receiver.poll(timeout_s if timeout_s else None):
            payload = receiver.recv()
        else:
            timed_out = True
    except (EOFError, OSError):
        payload = None
    finally:
        receiver.close()
        if timed_out:
            child.kill()
        child.join()
    if timed_out:
        raise IsolatedError(f"{what}: reading took longer than {timeout_s:g} s "
                            "(settings.yaml ingest.reader_timeout_seconds); stopped", "timeout")
    if payload is None:
        raise IsolatedError(
            f"{what}: the reader process was killed by {_signal_name(child.exitcode)} (e.g. a native reader "
            "aborted on a hostile or corrupt file, or hit the memory limit); this feed failed, the others go on",
            "crash")
    if payload[0] == "ok":
        return payload[1]
    _, kind, message = payload
    raise IsolatedError(f"{what}: {message}" if kind == "memory" else message, kind)
