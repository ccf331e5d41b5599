"""One target's snapshots as one typed record: the latest of each collector, or all those kept.

Collectors are registered and recorded by name (``TargetState.record``), but
a reader asks for a snapshot by attribute, so a misspelt collector is an
error the type checker sees and each snapshot comes back with its type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pgradar.agent.model.activity import (
    ActivitySnapshot,
    DatabaseSnapshot,
    ServerSnapshot,
    SessionsSnapshot,
    SettingsSnapshot,
)
from pgradar.agent.model.bouncer import BouncerSnapshot
from pgradar.agent.model.catalog import (
    ForeignKeysSnapshot,
    IndexesSnapshot,
    IndexFirstSeen,
    SizesSnapshot,
    TablesSnapshot,
)
from pgradar.agent.model.plans import AnalyzeSnapshot, AutoExplainSnapshot, PlansSnapshot
from pgradar.agent.model.replication import ReplicationSnapshot
from pgradar.agent.model.statements import StatementsSnapshot
from pgradar.agent.model.vacuum import BloatSnapshot, VacuumSnapshot


@dataclass(frozen=True, slots=True)
class Snapshots:
    """The latest snapshot of each collector of one target (None before its first success)."""

    server: ServerSnapshot | None = None
    activity: ActivitySnapshot | None = None
    database: DatabaseSnapshot | None = None
    statements: StatementsSnapshot | None = None
    tables: TablesSnapshot | None = None
    indexes: IndexesSnapshot | None = None
    settings: SettingsSnapshot | None = None
    sizes: SizesSnapshot | None = None
    foreign_keys: ForeignKeysSnapshot | None = None
    plans: PlansSnapshot | None = None
    replication: ReplicationSnapshot | None = None
    sessions: SessionsSnapshot | None = None
    auto_explain: AutoExplainSnapshot | None = None
    explain_analyze: AnalyzeSnapshot | None = None
    pgbouncer: BouncerSnapshot | None = None
    index_first_seen: IndexFirstSeen | None = None  # derived from each indexes poll
    vacuum: VacuumSnapshot | None = None
    bloat: BloatSnapshot | None = None

    @classmethod
    def of(cls, latest: Mapping[str, Any]) -> Snapshots:
        """The record of a by-name mapping; names that are no field (a custom collector's) are left out."""
        return cls(**{name: latest[name] for name in COLLECTORS if latest.get(name) is not None})


@dataclass(frozen=True, slots=True)
class SnapshotHistory:
    """Every kept snapshot of each collector, oldest first: for rules that compare polls."""

    server: tuple[ServerSnapshot, ...] = ()
    activity: tuple[ActivitySnapshot, ...] = ()
    database: tuple[DatabaseSnapshot, ...] = ()
    statements: tuple[StatementsSnapshot, ...] = ()
    tables: tuple[TablesSnapshot, ...] = ()
    indexes: tuple[IndexesSnapshot, ...] = ()
    settings: tuple[SettingsSnapshot, ...] = ()
    sizes: tuple[SizesSnapshot, ...] = ()
    foreign_keys: tuple[ForeignKeysSnapshot, ...] = ()
    plans: tuple[PlansSnapshot, ...] = ()
    replication: tuple[ReplicationSnapshot, ...] = ()
    sessions: tuple[SessionsSnapshot, ...] = ()
    auto_explain: tuple[AutoExplainSnapshot, ...] = ()
    explain_analyze: tuple[AnalyzeSnapshot, ...] = ()
    pgbouncer: tuple[BouncerSnapshot, ...] = ()
    index_first_seen: tuple[IndexFirstSeen, ...] = ()
    vacuum: tuple[VacuumSnapshot, ...] = ()
    bloat: tuple[BloatSnapshot, ...] = ()

    @classmethod
    def of(cls, kept: Mapping[str, Iterable[Any]]) -> SnapshotHistory:
        """The record of a by-name mapping; names that are no field (a custom collector's) are left out."""
        return cls(**{name: tuple(kept[name]) for name in COLLECTORS if name in kept})

    @property
    def latest(self) -> Snapshots:
        return Snapshots(**{name: (getattr(self, name) or (None,))[-1] for name in COLLECTORS})


COLLECTORS: tuple[str, ...] = tuple(f.name for f in fields(Snapshots))
