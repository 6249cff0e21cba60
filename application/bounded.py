"""A bounded map: at most ``maxsize`` entries, the least recently used out first; safe across
threads. For the process's small caches of things already worked out (decoded tokens,
views, projects' recent states), each of which is only ever a shortcut to the same answer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            msg = f"a bounded map holds at least one entry, not {maxsize}"
            raise ValueError(msg)
        self.maxsize = maxsize
        self._held: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._held.get(key)
            if value is not None:
                self._held.move_to_end(key)
            return value

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._held.pop(key, None)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._held[key] = value
            self._held.move_to_end(key)
            while len(self._held) > self.maxsize:
                self._held.popitem(last=False)
