"""Give the memory a task frees back to the system, so its peak is what it holds, not what it
once held.

glibc serves an allocation above its *mmap threshold* by ``mmap`` (returned on free) and the rest
from its heap (kept for reuse). The threshold starts at 128 KiB and rises to the size of each large
block freed, up to 32 MiB: after the first frees, the 1–4 MB column arrays of a 200,000-row batch
land in the heap, and a plan that reads ten million records batch by batch keeps their high-water
mark. A fixed threshold of 1 MiB sends every array of that size to ``mmap``; the heap's top is
trimmed past the same size. Measured on the 10M-record plan (docs/benchmarks.md): peak 2,233 →
1,915–1,922 MiB at no loss of wall time. It is not free: every big array is then fresh pages,
each faulted in by the kernel (a 1M-record plan that holds its pool spent several seconds more
in the kernel with it), so only the scan of a pool too big to hold turns it on
(``matching.run._scan_pool``). Dask sets the same knobs (``MALLOC_TRIM_THRESHOLD_``) in its
workers for the same reason. The scan reads on threads, and glibc gives each thread an arena of
its own that keeps its own freed blocks: for a pool many times the training sample the arenas
are capped too (``ARENAS``).

Training wants pages kept instead (:func:`reuse_freed_pages`): on threads it gathers and compares
a few MB per column of candidate pairs, thousands of times, and with the scan's 1 MiB threshold
(or glibc's own trimming of each thread's heap) every such array was fresh pages, faulted in by
the kernel: 3.4-3.8 million page faults and 11-14 s of kernel time in a 1M-record plan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

#: mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: arrays at least this big are mapped, and given back when freed
THRESHOLD = 1 << 20
#: malloc arenas at most, for a pool many times what a task can hold: glibc gives each new thread
#: its own heap, whose freed blocks serve only that arena, so the scan's threads each kept a
#: high-water mark of their own (10M-record plan: 2,041 MiB with one scan thread, 2,203-2,253
#: with two; at most 2 arenas: 2,011-2,025). Threads then wait on each other's allocations (a
#: 1M-record plan took 34 s instead of 30), so it is not for a pool that nearly fits.
ARENAS = 2
#: while training: arrays under this size come from the heap ...
REUSE_THRESHOLD = 2 << 20
#: ... and each heap keeps this much free top for the next allocation. Measured on the 1M-record
#: plan (docs/benchmarks.md): page faults 3.5-3.7 M -> 1.3 M, kernel time 11-14 -> 6 s; a 4 MiB
#: threshold or a 64 MiB pad saved a little more and took the peak to 2 GiB or past it
TOP_PAD = 32 << 20


def _set_malloc(threshold: int, pad: int, arenas: int | None = None) -> bool:
    """glibc's mmap and trim thresholds at ``threshold`` bytes, its heaps' free top at ``pad``
    bytes and (with ``arenas``) its arenas at that many, for this process and the processes it
    forks from now on. False where the C library has no ``mallopt`` (not glibc): nothing changes
    there, or where it refused a value."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = (mallopt(M_MMAP_THRESHOLD, threshold) == 1 and mallopt(M_TRIM_THRESHOLD, threshold) == 1
            and mallopt(M_TOP_PAD, pad) == 1)
    if arenas is not None:
        done = done and mallopt(M_ARENA_MAX, arenas) == 1
    if not done:
        log.warning("mallopt refused a %d-byte threshold, a %d-byte top pad or the arena cap %s",
                    threshold, pad, arenas)
    return done


def return_freed_memory(threshold: int = THRESHOLD, arenas: int | None = None) -> bool:
    """Freed arrays of ``threshold`` bytes or more go back to the system, heaps keep no free
    top, and with ``arenas`` threads share that many malloc arenas (see :func:`_set_malloc`)."""
    return _set_malloc(threshold, 0, arenas)


def reuse_freed_pages(threshold: int = REUSE_THRESHOLD, pad: int = TOP_PAD) -> bool:
    """For a phase that frees and makes again arrays of a few MB in a loop (training): arrays
    under ``threshold`` bytes come from the heap and each heap keeps ``pad`` bytes of free top
    (see :func:`_set_malloc`)."""
    return _set_malloc(threshold, pad)


def use_arrow_pool() -> str:
    """Arrow buffers from jemalloc instead of pyarrow's default mimalloc, for this process and
    those it forks; returns the pool in use. Why: mimalloc commits each arena it reserves at
    once, and its first gigabyte of decrypted Parquet took three times as long here (1M-record
    pool read 4.2-4.6 s, against 1.0-1.3 s from jemalloc or glibc; docs/benchmarks.md). An
    operator's ``ARROW_DEFAULT_MEMORY_POOL`` wins; a pyarrow built without jemalloc keeps its own."""
    import os

    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            pa.set_memory_pool(pa.jemalloc_memory_pool())
        except NotImplementedError:  # (pa.ArrowNotImplementedError is one)
            log.info("pyarrow has no jemalloc pool: Arrow keeps %s", pa.default_memory_pool().backend_name)
    return pa.default_memory_pool().backend_name


def release_unused() -> None:
    """Hand back what the allocators keep for reuse after a big transient, e.g. a pool scanned
    from encrypted Parquet: Arrow's memory pool (mimalloc kept 0.37 GiB of freed segments after
    the 1M-record plan's scan) and glibc's heap (``malloc_trim``). The next allocations then
    take fresh pages, so call it between phases, not in a loop."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
