"""What changed between two states of a project, as paths into its view."""

from __future__ import annotations

from typing import Any

import msgspec

_KEYS = ("id", "officer", "helper", "code")  # how list items are matched across versions


class Change(msgspec.Struct):
    path: str
    before: Any
    after: Any


def _key(item: Any) -> str | None:
    if isinstance(item, dict):
        for k in _KEYS:
            if k in item:
                return str(item[k])
    return None


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Changes from ``before`` to ``after`` (JSON-like values). Lists of objects with an id
    are matched by id, so an inserted item is one change, not a shifted list."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for k in sorted(before.keys() | after.keys()):
            sub = f"{path}.{k}" if path else str(k)
            changes += diff(before.get(k), after.get(k), sub)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        keys_b, keys_a = [_key(i) for i in before], [_key(i) for i in after]
        if all(keys_b) and all(keys_a) and len(set(keys_b)) == len(keys_b):
            by_b = dict(zip(keys_b, before, strict=True))
            by_a = dict(zip(keys_a, after, strict=True))
            order = list(dict.fromkeys([*keys_b, *keys_a]))
            return [c for k in order for c in diff(by_b.get(k), by_a.get(k), f"{path}[{k}]")]
        if len(before) == len(after):
            return [c for n, (b, a) in enumerate(zip(before, after, strict=True))
                    for c in diff(b, a, f"{path}[{n}]")]  # fmt: skip
    return [] if before == after else [Change(path, before, after)]
