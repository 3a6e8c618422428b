"""Run a night's independent tasks (feeds, link shards) on several processes, as the DAG's mapped
tasks run on several Celery workers: ``councilmatch run`` then uses every core of the machine.

Workers are forked (milliseconds, the modules already imported; a fresh interpreter would spend
seconds importing pandas and pyarrow per pool), as the feed readers are (``orchestrate.isolate``).
A worker that dies (the kernel's OOM killer, a crash in native code) must not stop the night:
the tasks it took down are run again one by one in this process, which is safe because every
task is idempotent.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from orchestrate.isolate import keep_reader

log = logging.getLogger(__name__)

T = TypeVar("T")
#: ``progress(items, label)`` yields the items back while showing progress (``councilmatch run``)
Progress = Callable[[Sequence[Any], str], Iterator[Any]]


def default_workers() -> int:
    """The cores this process may use (its CPU affinity), at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


class _Completed:
    """Futures in the order they finish, with a length (for a progress bar)."""

    def __init__(self, futures: list[Future]) -> None:
        self.futures = futures

    def __len__(self) -> int:
        return len(self.futures)

    def __iter__(self) -> Iterator[Future]:
        return as_completed(self.futures)


def run_tasks(fn: Callable[..., T], calls: Sequence[tuple], workers: int, progress: Progress | None = None,
              label: str = "") -> list[T]:
    """``[fn(*args) for args in calls]``, on up to ``workers`` processes; results in call order.

    ``fn`` must be a module-level function of plain, picklable arguments (as a DAG task's are).
    """
    if workers <= 1 or len(calls) <= 1:
        items = progress(list(calls), label) if progress else calls
        return [fn(*args) for args in items]
    results: dict[int, T] = {}
    redo: list[int] = []
    # a worker runs task after task: its feeds' readers can be one kept child (orchestrate.isolate)
    with ProcessPoolExecutor(max_workers=min(workers, len(calls)), mp_context=mp.get_context("fork"),
                             initializer=keep_reader) as pool:
        futures = [pool.submit(fn, *args) for args in calls]
        position = {id(f): i for i, f in enumerate(futures)}
        done = _Completed(futures)
        for future in (progress(done, label) if progress else done):
            i = position[id(future)]
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                redo.append(i)
    if redo:
        log.warning("a worker process died; %d task(s) run again in this process", len(redo))
        for i in sorted(redo):
            results[i] = fn(*calls[i])
    return [results[i] for i in range(len(calls))]
