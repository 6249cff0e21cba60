"""A bounded in-process cache of projects as last seen, each with the hash of its head record.

A cached project is never handed out or changed: callers get a copy (``copy.deepcopy``, which
:class:`~domain.project.KeyProject` makes cheap, its state being copy-on-write). The cache may be
behind the store when another process wrote: a command then fails its insert on the taken
version and is retried on fresh state (:mod:`application.cases`). A read first fetches the
events after the cached version (:meth:`application.store.CaseStore.get_project`), unless the
cache is kept coherent (:mod:`application.coherence`): then every other process's save marks
the projects it changed as behind, and only those are fetched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from uuid import UUID

from domain.project import KeyProject


@dataclass(frozen=True)
class Cached:
    project: KeyProject
    head: str | None  # chain hash of the stored record at project.version, when known


class ProjectCache:
    """Least recently used first out, at most ``maxsize`` projects; safe across threads."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            msg = f"the project cache holds at least one project, not {maxsize}"
            raise ValueError(msg)
        self.maxsize = maxsize
        self._entries: OrderedDict[UUID, Cached] = OrderedDict()
        # The latest version each recently saved project was stored at, as heard: an entry
        # below it is behind, also one put just after the news came.
        self._seen: OrderedDict[UUID, int] = OrderedDict()
        self._generation = 0  # moves on when every entry may be behind
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Read before loading a project, given back to :meth:`put`: an entry loaded before
        :meth:`all_behind` is not kept."""
        return self._generation

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, project_id: UUID) -> Cached | None:
        with self._lock:
            entry = self._entries.get(project_id)
            if entry is not None:
                self._entries.move_to_end(project_id)
            return entry

    def is_behind(self, entry: Cached) -> bool:
        """Whether the project was since stored at a later version than ``entry`` has."""
        with self._lock:
            return self._seen.get(entry.project.id, 0) > entry.project.version

    def saw(self, project_id: UUID, version: int) -> None:
        """The project was stored at ``version`` (by some process)."""
        with self._lock:
            self._seen[project_id] = max(version, self._seen.get(project_id, 0))
            self._seen.move_to_end(project_id)
            while len(self._seen) > 4 * self.maxsize:
                gone, seen = self._seen.popitem(last=False)
                held = self._entries.get(gone)
                if held is not None and held.project.version < seen:
                    del self._entries[gone]  # its news is forgotten: it must not look current

    def all_behind(self) -> None:
        """Every cached project may be behind (what changed is not known): drop them all."""
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def put(self, project_id: UUID, entry: Cached, generation: int | None = None) -> None:
        """Keeps the newer of the entry given and the one held (threads race to put); not
        one loaded in an earlier ``generation``."""
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            held = self._entries.get(project_id)
            if held is not None and held.project.version > entry.project.version:
                return
            self._entries[project_id] = entry
            self._entries.move_to_end(project_id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def drop(self, project_id: UUID) -> None:
        with self._lock:
            self._entries.pop(project_id, None)
