"""Derivations of snapshots' rows, computed once per snapshot and target.

Snapshots are frozen and replaced, never changed, so a rows tuple's identity
is its version: classification runs every 15 s and /metrics is rendered after
every job, over tables and indexes polled every minute or five, so deriving
the index groups or the table ranking each time repeats work on the same rows.
One process watches many targets: with one small cache shared by all, the
targets would evict each other's entries. So each target has its own slots,
chosen by the ``snapshot_scope`` its caller entered.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

R = TypeVar("R")

_SCOPE: ContextVar[str] = ContextVar("pgradar_snapshot_scope", default="")
# Entries kept per function and target: the statements by key are derived from the latest snapshot
# and the one before (2); the rankings and groups from the latest (1). Each entry keeps its snapshots
# and its result alive, for every target (docs/fleet.md).
PER_SCOPE = 2


@contextmanager
def snapshot_scope(target: str) -> Iterator[None]:
    """Derivations inside run in ``target``'s own cache slots (see ``per_snapshot``).

    The runtime, the classification and the exporter enter the scope of the
    target whose snapshots they derive from; outside any scope all callers
    share one slot set.
    """
    token = _SCOPE.set(target)
    try:
        yield
    finally:
        _SCOPE.reset(token)


class PerSnapshot(Generic[R]):
    """``fn`` of snapshots' rows, remembered per target for its last ``PER_SCOPE`` arguments.

    The arguments are kept alive with the result, which keeps their ids
    unique, so the memory held is bounded by the targets' own history and
    one target's polls never evict another's. ``derivations`` counts the
    calls of ``fn``: what a test of the caching counts.
    """

    def __init__(self, fn: Callable[..., R]) -> None:
        self._fn = fn
        self._caches: dict[str, dict[tuple[int, ...], tuple[tuple[Any, ...], R]]] = {}
        self._lock = threading.Lock()
        self.derivations = 0
        functools.update_wrapper(self, fn)

    def __call__(self, *rows: Any, **fixed: Any) -> R:
        """``fn(*rows, **fixed)``, remembered by the identity of ``rows`` alone.

        ``fixed`` holds what ``fn`` reads that cannot change while ``rows`` stand
        (a statement's text, fetched with the poll that first listed it), but is
        rebuilt more often than they are (each observation copies the texts).
        """
        key = tuple(id(r) for r in rows)
        scope = _SCOPE.get()
        with self._lock:
            cache = self._caches.setdefault(scope, {})
            hit = cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], rows, strict=True)):
            return hit[1]
        result = self._fn(*rows, **fixed)
        with self._lock:
            self.derivations += 1
            if len(cache) >= PER_SCOPE:
                cache.pop(next(iter(cache)))
            cache[key] = (rows, result)
        return result


def per_snapshot(fn: Callable[..., R]) -> PerSnapshot[R]:
    """Decorate a pure function of snapshots' rows so each target derives it once per snapshot."""
    return PerSnapshot(fn)
