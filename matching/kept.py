"""Values made once per key and kept for whoever asks next: the pairs and estimates one run's
training shares between match types, which train on several threads.

A thread asking for a key another thread is making waits for that value instead of making it
again (each key has its own lock, so different keys are made at the same time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class Kept:
    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for; the same value every time after."""
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = make()
        return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
