"""A prometheus-client custom collector that renders the agent's state.

A scrape reads the latest snapshots and never queries a database, so the
load on PostgreSQL depends on poll intervals, not on how many Prometheus
servers scrape (DESIGN section 2). ``describe`` returns nothing so that
registering the collector does not trigger a collection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from pgradar.agent.derive.derived import snapshot_scope
from pgradar.agent.model.findings import OBJECT_FIELDS
from pgradar.agent.model.snapshots import SnapshotHistory, Snapshots
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.agent.settings.config import DEFAULTS
from pgradar.exporters.encoding import (
    OPENMETRICS_EOF,
    BlockEncoder,
    Blocks,
    family_blocks,
    forget_unused_label_values,
    lean_blocks,
)
from pgradar.exporters.series import (
    Families,
    oldest_of,
    problem_objects,
    render_activity,
    render_databases,
    render_indexes,
    render_load,
    render_pgbouncer,
    render_plans,
    render_problems,
    render_replication,
    render_self,
    render_sessions,
    render_statements,
    render_tables,
)
from pgradar.exporters.vacuum import render_vacuum

# What a section depends on: rendered again only when it changes.
Version = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Section:
    """One group of a target's series, with what its text depends on.

    Equal versions render the same text, so ``PartedRegistry`` keeps a
    target's section as bytes until its version changes: at 100 targets
    most scrapes find one or two targets changed since the last render.
    A version holds the snapshots themselves (compared by identity), or
    values where the object is rebuilt with equal content (the problems,
    every classification).
    """

    name: str
    version: Callable[[TargetState], Version]
    render: Callable[[Families, TargetState], None]


def _same(a: Version, b: Version) -> bool:
    """Versions equal element by element, by identity first (snapshots are never compared row by row)."""
    return len(a) == len(b) and all(
        x is y or (type(x) is type(y) and _plain(x) and x == y) for x, y in zip(a, b, strict=True)
    )


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, tuple, frozenset, datetime)) or value is None


def _latest_of(pick: Callable[[Snapshots], object]) -> Callable[[TargetState], Version]:
    """A section that depends on the latest snapshot(s) ``pick`` chooses, and nothing else."""
    return lambda t: (pick(t.current()),)


def _self_version(t: TargetState) -> Version:
    statuses = tuple(
        (
            name,
            s.runs,
            s.errors,
            s.last_duration_s,
            s.last_success_at,
            s.disabled_reason,
            s.late,
            s.skipped,
            s.last_lateness_s,
        )
        for name, s in sorted(t.status.items())
    )
    return (t.up, t.server, statuses)


def _statements_version(t: TargetState) -> Version:
    # statement_totals changes in place, always together with a new snapshot and interval
    return (t.current().statements, t.texts_fetched_total, *t.statement_intervals)


_PROBLEM_IDENTITY = attrgetter("kind", "severity", *OBJECT_FIELDS)


def _problems_version(t: TargetState) -> Version:
    return tuple(_PROBLEM_IDENTITY(p.finding) for p in t.problems.values())


def _relations_version(
    pick: Callable[[SnapshotHistory], Sequence[Any]], with_index: bool
) -> Callable[[TargetState], Version]:
    """The rows, not the snapshot: a poll that read the same rows (catalog unchanged) renders the same text."""

    def version(t: TargetState) -> Version:
        history = pick(t.kept())
        latest, oldest = (history[-1] if history else None), oldest_of(history)
        return (
            latest.rows() if latest is not None else None,
            oldest.rows() if oldest is not None else None,
            frozenset(problem_objects(t, with_index=with_index)),
        )

    return version


class SectionedCollector(Collector):
    """A collector whose series are rendered per target and section, so that a registry can cache each apart."""

    sections: tuple[Section, ...] = ()

    def __init__(self, state: AgentState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        f = Families()
        for t in self.state:
            with t.lock, snapshot_scope(t.name):
                for section in self.sections:
                    section.render(f, t)
        return list(f)


class StateCollector(SectionedCollector):
    """Every series but the per-table and per-index ones (RelationsCollector)."""

    def __init__(self, state: AgentState, top_statements: int) -> None:
        super().__init__(state)
        self.top_statements = top_statements
        self.sections = (
            Section("self", _self_version, render_self),
            Section("statements", _statements_version, lambda f, t: render_statements(f, t, self.top_statements)),
            Section("plans", _latest_of(lambda s: s.plans), render_plans),
            Section("databases", _latest_of(lambda s: s.database), render_databases),
            Section("activity", _latest_of(lambda s: (s.settings, s.activity)), render_activity),
            Section("sessions", _latest_of(lambda s: s.sessions), render_sessions),
            Section("replication", lambda t: t.kept().replication, render_replication),
            Section("pgbouncer", _latest_of(lambda s: s.pgbouncer), render_pgbouncer),
            Section("problems", _problems_version, render_problems),
            Section("vacuum", _latest_of(lambda s: (s.vacuum, s.bloat)), render_vacuum),
            Section("load", lambda t: (t.load.totals.samples, t.cpus), render_load),
        )


class RelationsCollector(SectionedCollector):
    """The per-table and per-index series: two thirds of the exposition on a large catalog.

    They change only when a tables or indexes snapshot or the set of
    problems does (once a minute or less), while /metrics is rendered after
    every job.
    """

    def __init__(self, state: AgentState, top_tables: int, top_indexes: int, every_family: bool = False) -> None:
        super().__init__(state)
        self.top_tables = top_tables
        self.top_indexes = top_indexes
        self.every_family = every_family
        self.sections = (
            Section(
                "tables",
                _relations_version(lambda kept: kept.tables, with_index=False),
                lambda f, t: render_tables(f, t, self.top_tables, self.every_family),
            ),
            Section(
                "indexes",
                _relations_version(lambda kept: kept.indexes, with_index=True),
                lambda f, t: render_indexes(f, t, self.top_indexes, self.every_family),
            ),
        )


class _Listed:
    """A registry of given metric families, for an encoder (which only calls ``collect``)."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.collect = collect


def join_families(parts: Iterable[Blocks], tail: bytes = b"") -> bytes:
    """One exposition: each family's header once, then the samples of every part that has it, together."""
    headers: dict[bytes, bytes] = {}
    samples: dict[bytes, list[bytes]] = {}
    for blocks in parts:
        for name, header, lines in blocks:
            if name not in headers:
                headers[name] = header
                samples[name] = []
            samples[name].append(lines)
    chunks = [chunk for name, lines in samples.items() for chunk in (headers[name], *lines)]
    chunks.append(tail)
    return b"".join(chunks)


class PartedRegistry(CollectorRegistry):
    """A registry that encodes its collectors per target and section, reusing text whose version holds.

    A ``SectionedCollector`` is encoded per (section, target) and kept while
    that section's version for that target holds; another collector with a
    ``version()`` (CustomCollector) is kept while that holds; one with neither
    is encoded every time. A section's families are the gauges and counters
    of ``Families``, which ``encoding.py`` writes byte for byte as
    prometheus_client does at a fraction of its cost (its per-sample work was
    most of a render's CPU); any other collector keeps prometheus_client's
    encoder. The text format wants every sample of a family together under
    one HELP/TYPE, so the cached text is kept cut into families and joined
    per family (OpenMetrics: one ``# EOF``, at the end).
    """

    def __init__(self) -> None:
        super().__init__(auto_describe=False)
        self.parts: list[Collector] = []
        self.encoded = 0  # blocks encoded, as against reused
        self._cache: dict[tuple[Any, ...], tuple[Version, Blocks]] = {}
        self._rendering = threading.Lock()  # the background render and a scrape's first one share the cache

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self.parts.append(collector)

    def _blocks(
        self,
        key: tuple[Any, ...],
        version: Version | None,
        collect: Callable[[], Iterable[Metric]],
        encoder: Callable[[Any], bytes],
        seen: set[tuple[Any, ...]],
        lean: BlockEncoder | None = None,
    ) -> Blocks:
        seen.add(key)
        cached = self._cache.get(key)
        if version is not None and cached is not None and _same(cached[0], version):
            return cached[1]
        blocks = lean(collect()) if lean is not None else family_blocks(encoder(_Listed(collect)))
        self.encoded += 1
        if version is not None:
            self._cache[key] = (version, blocks)
        return blocks

    def render(self, encoder: Callable[[Any], bytes], content_type: str) -> bytes:
        with self._rendering:
            return self._render(encoder, content_type)

    def _render(self, encoder: Callable[[Any], bytes], content_type: str) -> bytes:
        forget_unused_label_values()  # what the encoder keeps follows what is rendered, not what ever was
        parts: list[Blocks] = []
        seen: set[tuple[Any, ...]] = set()
        lean = lean_blocks(encoder)
        for part in self.parts:
            if isinstance(part, SectionedCollector):
                for t in part.state:
                    with t.lock, snapshot_scope(t.name):
                        for section in part.sections:

                            def collect(section: Section = section, t: TargetState = t) -> Iterable[Metric]:
                                f = Families()
                                section.render(f, t)
                                return list(f)

                            section_key = (id(part), section.name, t.name, content_type)
                            parts.append(self._blocks(section_key, section.version(t), collect, encoder, seen, lean))
            else:
                version_of = getattr(part, "version", None)
                version = version_of() if version_of is not None else None
                parts.append(self._blocks((id(part), content_type), version, part.collect, encoder, seen))
        for gone in [k for k in self._cache if k[-1] == content_type and k not in seen]:
            del self._cache[gone]  # a target no longer watched
        # one copy of the body: at 100 targets it is tens of MiB
        return join_families(parts, OPENMETRICS_EOF if "openmetrics" in content_type else b"")


def registry_for(
    state: AgentState,
    top_statements: int = DEFAULTS.top_statements,
    top_tables: int = DEFAULTS.top_tables,
    top_indexes: int = DEFAULTS.top_indexes,
    relation_series: str = DEFAULTS.relation_series,
) -> PartedRegistry:
    registry = PartedRegistry()
    registry.register(StateCollector(state, top_statements))
    registry.register(RelationsCollector(state, top_tables, top_indexes, every_family=relation_series == "all"))
    return registry
