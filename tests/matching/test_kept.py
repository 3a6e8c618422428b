"""``matching.kept.Kept``: what training threads share is made once, however many ask at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from matching.kept import Kept


def test_a_key_asked_for_by_many_threads_at_once_is_made_once() -> None:
    kept, made, start = Kept(), [], threading.Barrier(8)

    def make(key: str) -> str:
        made.append(key)
        time.sleep(0.05)  # long enough for every other thread to ask meanwhile
        return key.upper()

    def ask(i: int) -> str:
        start.wait()
        key = "ab"[i % 2]
        return kept.get(key, lambda: make(key))

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, range(8)))
    assert got == ["A", "B"] * 4
    assert sorted(made) == ["a", "b"] and len(kept) == 2 and "a" in kept


def test_different_keys_are_made_at_the_same_time() -> None:
    """Each make waits until all four are running: made one at a time, the barrier would break."""
    kept, together = Kept(), threading.Barrier(4, timeout=10)

    def make(key: int) -> int:
        together.wait()
        return key

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda k: kept.get(k, lambda: make(k)), range(4))) == [0, 1, 2, 3]
