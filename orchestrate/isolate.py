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

A process that ingests feed after feed (a worker of ``councilmatch run``,
``orchestrate.parallel``) calls :func:`keep_reader`: its reader child then stays for
the next extract instead of being forked anew for each. A fresh child pays a page
fault for every page it writes (its parent's heap is shared copy-on-write), about a
third more than reading in-process; a kept one has faulted its heap in once. The
limits hold per extract (address space: the reader's own size when the extract
arrives plus ``memory_mb``), and a reader that failed in any way (an error, out of
memory or time, killed) is never reused: the next extract gets a fresh one. It sees
nothing a fresh child would not: a child forked from the worker inherits the
worker's memory, which held the earlier feeds too.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
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


def _answer(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """Run ``fn`` and send back ("ok", result) or ("error", kind, message)."""
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


def _child(conn: Any, fn: Callable[..., Any], args: tuple, kwargs: dict, limit_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    _answer(conn, fn, args, kwargs)
    conn.close()


def _serve(conn: Any, parent_end: Any) -> None:
    """A kept reader: one extract per message, each under its own address-space limit."""
    parent_end.close()  # else the worker's death would never reach this loop as EOF
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the worker went away
            return
        if message is None:
            return
        fn, args, kwargs, memory_mb = message
        limit = _vm_bytes() + memory_mb * (1 << 20) if memory_mb else hard
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        _answer(conn, fn, args, kwargs)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


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


class _KeptReader:
    """A reader child that serves extract after extract for the process that forked it."""

    def __init__(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child_end = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_serve, args=(child_end, self.conn), daemon=True,
                                   name="councilmatch-reader")
        with _may_have_children():
            self.process.start()
        child_end.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def kill(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join()


#: process id -> its kept reader (None until the first extract); only processes that called keep_reader
_KEPT: dict[int, _KeptReader | None] = {}


def keep_reader() -> None:
    """From now on, this process keeps its reader child between extracts (see the module's docstring).

    Meant for processes that ingest feed after feed (``orchestrate.parallel``'s workers); a
    process that reads one extract gains nothing from it."""
    _KEPT.setdefault(os.getpid(), None)


def stop_reader() -> None:
    """Stop this process's kept reader, if any, and go back to a fresh child per extract."""
    reader = _KEPT.pop(os.getpid(), None)
    if reader is not None:
        reader.stop()


def _ask_kept(fn: Callable[..., Any], args: tuple, kwargs: dict, memory_mb: int,
              timeout_s: float) -> tuple[tuple | None, bool, int | None] | None:
    """(payload, timed out, exit code) from this process's kept reader; None if it keeps none, or
    the call cannot be sent to it (not picklable: the caller forks a fresh child instead)."""
    pid = os.getpid()
    if pid not in _KEPT:
        return None
    try:
        message = pickle.dumps((fn, args, kwargs, memory_mb), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None
    reader = _KEPT[pid]
    if reader is None or not reader.process.is_alive():
        reader = _KEPT[pid] = _KeptReader()
    payload, timed_out = None, False
    try:
        reader.conn.send_bytes(message)
        if reader.conn.poll(timeout_s if timeout_s else None):
            payload = reader.conn.recv()
        else:
            timed_out = True
    except (EOFError, OSError):
        payload = None
    exitcode = None
    if payload is None or payload[0] != "ok":  # never reuse a reader that failed
        _KEPT[pid] = None
        if payload is None and not timed_out:
            reader.process.join(5)  # it died: its own exit code says how
            exitcode = reader.process.exitcode
        reader.kill()
    return payload, timed_out, exitcode


def _fresh_child(fn: Callable[..., Any], args: tuple, kwargs: dict, memory_mb: int,
                 timeout_s: float) -> tuple[tuple | None, bool, int | None]:
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
    return payload, timed_out, child.exitcode


def run_isolated(fn: Callable[..., T], *args: Any, what: str, memory_mb: int = 0, timeout_s: float = 0,
                 **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a child process under the limits; its result, or ``IsolatedError``.

    ``what`` names the work in messages (e.g. the extract's path). ``memory_mb`` 0 and
    ``timeout_s`` 0 mean no limit. The child is forked for this call, or is the process's
    kept reader (:func:`keep_reader`).
    """
    answer = _ask_kept(fn, args, kwargs, memory_mb, timeout_s)
    payload, timed_out, exitcode = answer if answer is not None else _fresh_child(fn, args, kwargs, memory_mb,
                                                                                  timeout_s)
    if timed_out:
        raise IsolatedError(f"{what}: reading took longer than {timeout_s:g} s "
                            "(settings.yaml ingest.reader_timeout_seconds); stopped", "timeout")
    if payload is None:
        raise IsolatedError(
            f"{what}: the reader process was killed by {_signal_name(exitcode)} (e.g. a native reader "
            "aborted on a hostile or corrupt file, or hit the memory limit); this feed failed, the others go on",
            "crash")
    if payload[0] == "ok":
        return payload[1]
    _, kind, message = payload
    raise IsolatedError(f"{what}: {message}" if kind == "memory" else message, kind)
