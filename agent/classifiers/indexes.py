"""Index problems: unused_index, duplicate_index, invalid_index, missing_fk_index.

An index on a partition that is attached to a partitioned index is one index
to the user (the partitioned one): it is judged and dropped as a whole, and
DROP INDEX CONCURRENTLY does not work on it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from pgradar.agent.classifiers.fixes import create_index_sql
from pgradar.agent.classifiers.tables import is_large
from pgradar.agent.derive.derived import per_snapshot
from pgradar.agent.model.activity import DatabaseSnapshot
from pgradar.agent.model.catalog import ForeignKey, ForeignKeysSnapshot, IndexesSnapshot, IndexFirstSeen, IndexStat
from pgradar.agent.model.findings import Finding, Kind, Severity, human_bytes, human_seconds, qualified
from pgradar.agent.model.observation import Observation
from pgradar.agent.model.thresholds import Thresholds


@dataclass(frozen=True, slots=True)
class LogicalIndex:
    """One index as the user sees it: a plain index, or a partitioned one summed over its partitions.

    The sums and flags are taken once, when the snapshot is grouped: the rules
    ask them of every index at every classification.
    """

    database: str
    schema: str
    relation: str
    index: str
    partitioned: bool
    parts: tuple[IndexStat, ...]
    idx_scan: int = field(init=False)
    size_bytes: int = field(init=False)
    keeps_a_rule: bool = field(init=False)  # a part backs a constraint or is unique: dropping it changes a rule
    valid: bool = field(init=False)  # every part is valid

    def __post_init__(self) -> None:
        parts = self.parts
        object.__setattr__(self, "idx_scan", sum(p.idx_scan for p in parts))
        object.__setattr__(self, "size_bytes", sum(p.size_bytes or 0 for p in parts))
        object.__setattr__(
            self, "keeps_a_rule", any(p.constraint_type is not None or p.is_unique or p.is_primary for p in parts)
        )
        object.__setattr__(self, "valid", all(p.is_valid for p in parts))

    @property
    def first(self) -> IndexStat:
        return self.parts[0]

    @property
    def name(self) -> str:
        return qualified(self.schema, self.index)

    def drop_sql(self) -> str:
        if self.partitioned:
            return (
                f"DROP INDEX {self.name};  -- partitioned index: CONCURRENTLY is not supported, "
                "this drops it on every partition"
            )
        return f"DROP INDEX CONCURRENTLY {self.name};"


@per_snapshot
def logical_indexes(indexes: Sequence[IndexStat]) -> tuple[LogicalIndex, ...]:
    groups: dict[tuple[str, str, str, str, bool], list[IndexStat]] = defaultdict(list)
    for i in indexes:
        if i.root_index is not None and i.root_schema is not None and i.root_relation is not None:
            groups[(i.database, i.root_schema, i.root_relation, i.root_index, True)].append(i)
        else:
            groups[(i.database, i.schema, i.relation, i.index, False)].append(i)
    return tuple(
        LogicalIndex(db, schema, rel, idx, part, tuple(parts)) for (db, schema, rel, idx, part), parts in groups.items()
    )


def _indexes(obs: Observation) -> tuple[IndexStat, ...]:
    snap: IndexesSnapshot | None = obs.snapshots.indexes
    return snap.indexes if snap is not None else ()


def _finding(
    kind: Kind,
    severity: Severity,
    target: str,
    index: LogicalIndex,
    summary: str,
    recommendation: str,
    evidence: dict[str, object],
) -> Finding:
    return Finding(
        kind,
        severity,
        target,
        summary,
        recommendation,
        evidence,
        database=index.database,
        schema=index.schema,
        relation=index.relation,
        index=index.index,
    )


# --- unused_index ------------------------------------------------------------------------


def observation_window(obs: Observation, index: LogicalIndex) -> tuple[datetime | None, str]:
    """Since when the index's scan count is known to cover, and what bounds it.

    The latest of: the database's statistics reset, the server's start
    (counters can be lost with a crash; on 15+ they survive a clean restart,
    so this errs short), and when the agent first saw the index, if it
    appeared while the agent watched.
    """
    candidates: list[tuple[datetime, str]] = []
    dbs: DatabaseSnapshot | None = obs.snapshots.database
    if dbs is not None:
        for db in dbs.databases:
            if db.database == index.database and db.stats_reset is not None:
                candidates.append((db.stats_reset, "statistics reset"))
    if obs.server is not None and obs.server.started_at is not None:
        candidates.append((obs.server.started_at, "server start"))
    seen: IndexFirstSeen | None = obs.snapshots.index_first_seen
    if seen is not None:
        firsts = [f for p in index.parts if (f := seen.of(p.database, p.indexrelid)) is not None]
        if firsts:
            candidates.append((max(firsts), seen.source))
    if not candidates:
        return None, "unknown"
    return max(candidates)


@per_snapshot
def _scans_by_name(indexes: Sequence[IndexStat]) -> dict[tuple[str, str, str, str], int]:
    return {(i.database, i.schema, i.relation, i.index): i.idx_scan for i in logical_indexes(indexes)}


def scanned_on_standby(obs: Observation, index: LogicalIndex) -> int:
    """Scans of the same index on the watched standbys (an index may serve only the read replicas)."""
    name = (index.database, index.schema, index.relation, index.index)
    return sum(
        _scans_by_name(_indexes(peer)).get(name, 0)
        for peer in obs.peers.values()
        if peer.server is not None and peer.server.role == "standby"
    )


def unused_index(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """An index scanned at most ``unused_index_max_scans`` times, not backing a constraint.

    Indexes under ``unused_index_min_bytes`` cost too little to matter. A
    warning needs an observation window of ``unused_index_min_age_s``; a
    shorter one (a recent reset or restart, a new index) is reported as
    info with its length. An index scanned on a watched standby is used.
    Indexes that back a primary key, unique or exclusion constraint never
    count: dropping them changes what the table accepts. Unique indexes
    without a constraint are left out too: they may enforce a rule.
    """
    if obs.server is not None and obs.server.role == "standby":
        return  # a standby's indexes are the primary's: judged there, with this standby's scans
    for index in logical_indexes(_indexes(obs)):
        if index.keeps_a_rule or not index.valid or index.size_bytes < t.unused_index_min_bytes:
            continue
        first = index.first
        scans = index.idx_scan
        standby_scans = scanned_on_standby(obs, index)
        if scans > t.unused_index_max_scans or standby_scans > 0:
            continue
        start, bound = observation_window(obs, index)
        window_s = (obs.now - start).total_seconds() if start is not None else 0.0
        severity: Severity = Severity.WARNING if window_s >= t.unused_index_min_age_s else Severity.INFO
        window = f"{human_seconds(window_s)} (since {bound})" if start is not None else "an unknown time"
        yield _finding(
            Kind.UNUSED_INDEX,
            severity,
            obs.target,
            index,
            f"{index.name} on {qualified(index.schema, index.relation)} ({human_bytes(index.size_bytes)})"
            f" was scanned {scans} times in {window}",
            index.drop_sql() + f"\n-- to recreate it: {first.definition};",
            {
                "idx_scan": scans,
                "standby_idx_scan": standby_scans,
                "size_bytes": index.size_bytes,
                "window_seconds": round(window_s),
                "window_since": bound,
                "partitions": len(index.parts) if index.partitioned else None,
            },
        )


# --- duplicate_index -----------------------------------------------------------------------


_NAME_IN_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON ")


def definition_shape(index: IndexStat) -> str:
    """The definition without the index's name: equal shapes are the same index."""
    return _NAME_IN_DEF.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX ON ", index.definition)


def _key_defs(index: IndexStat) -> list[str]:
    """The key items as written in the definition (columns with opclass/order, or expressions)."""
    return _key_items(index.definition)[: index.key_count]


def _key_items(definition: str) -> list[str]:
    inside = definition.split(" USING ", 1)[-1]
    inside = inside[inside.index("(") + 1 :] if "(" in inside else ""
    depth, item, items = 0, "", []
    for ch in inside:
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                items.append(item.strip())
                break
            depth -= 1
        if ch == "," and depth == 0:
            items.append(item.strip())
            item = ""
            continue
        item += ch
    return items


class _Keys(NamedTuple):
    """An index's definition without its name, and its key items: what ``covers`` compares."""

    shape: str
    keys: tuple[str, ...]


def _keys(index: IndexStat) -> _Keys:
    return _Keys(definition_shape(index), tuple(_key_defs(index)))


def covers(small: IndexStat, big: IndexStat, read: Mapping[int, _Keys]) -> bool:
    """``small`` is redundant given ``big``: same table, method and predicate, and its keys lead ``big``'s.

    Identical definitions always cover each other. A left prefix (or the
    same keys with other properties, such as a plain index on a primary
    key's columns) counts for btree only (other methods do not search by prefix), when
    ``small`` is not unique (its uniqueness on fewer columns is a stronger
    rule than ``big`` enforces) and its INCLUDE columns are in ``big``.
    ``read`` holds the table's indexes' keys by indexrelid (``_keys``):
    every pair of a table's indexes is compared, each definition read once.
    """
    if (small.database, small.relid) != (big.database, big.relid) or small.indexrelid == big.indexrelid:
        return False
    if small.method != big.method or (small.predicate or "") != (big.predicate or ""):
        return False
    small_keys, big_keys = read[small.indexrelid], read[big.indexrelid]
    if small_keys.shape == big_keys.shape:
        return True
    if small.method != "btree" or small.is_unique:
        return False
    lead = small_keys.keys
    if not lead or len(lead) > len(big_keys.keys) or big_keys.keys[: len(lead)] != lead:
        return False
    included = {c for c in small.columns[small.key_count :] if c is not None}
    return included <= {c for c in big.columns if c is not None}


def _keep_rank(index: IndexStat) -> tuple[int, int, int, int]:
    """Which of two identical indexes to keep: the constraint's, the unique one, the used one, the older."""
    return (index.constraint_type is not None, index.is_unique, index.idx_scan, -index.indexrelid)


def _logical(index: IndexStat) -> LogicalIndex:
    if index.root_index is not None and index.root_schema is not None and index.root_relation is not None:
        return LogicalIndex(index.database, index.root_schema, index.root_relation, index.root_index, True, (index,))
    return LogicalIndex(index.database, index.schema, index.relation, index.index, False, (index,))


@per_snapshot
def duplicate_pairs(indexes: Sequence[IndexStat]) -> tuple[tuple[IndexStat, IndexStat, bool], ...]:
    """(redundant index, the index that covers it, identical) for each redundant index: one per index."""
    by_table: dict[tuple[str, int], list[IndexStat]] = defaultdict(list)
    for i in indexes:
        if i.is_valid:
            by_table[(i.database, i.relid)].append(i)
    pairs = []
    for group in by_table.values():
        if len(group) < 2:
            continue
        read = {i.indexrelid: _keys(i) for i in group}  # each definition read once, not once per pair
        for small in group:
            if small.constraint_type is not None:
                continue
            for big in group:
                if not covers(small, big, read) or (small.root_index is None) != (big.root_index is None):
                    continue
                identical = covers(big, small, read)
                if identical and _keep_rank(small) > _keep_rank(big):
                    continue
                pairs.append((small, big, identical))
                break
    return tuple(pairs)


def duplicate_index(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """An index whose definition another index of the same table has, or leads.

    Of identical twins, the one backing a constraint, unique, more used or
    older is kept and the other reported. An index backing a constraint is
    never the one reported (drop the constraint instead, a schema change).
    On a partitioned table the partitions' copies are compared and the
    partitioned index reported once; a pair where only one side belongs to
    a partitioned index is left alone (dropping it would touch every
    partition).
    """
    if obs.on_standby and obs.primary_watched:  # the same catalog: reported once, on the primary
        return
    yield from duplicate_findings(_indexes(obs), obs.target)


@per_snapshot
def duplicate_findings(indexes: Sequence[IndexStat], target: str) -> tuple[Finding, ...]:
    """duplicate_index's findings, which depend on the indexes poll alone: built once per poll, not per pass.

    Classification runs every 15 s and the indexes poll every few minutes:
    at every pass the findings would be built again from the same rows.
    """
    findings = []
    reported: set[tuple[str, str, str]] = set()
    for small, big, identical in duplicate_pairs(indexes):
        logical, kept = _logical(small), _logical(big)
        if (logical.database, logical.schema, logical.index) in reported:
            continue
        reported.add((logical.database, logical.schema, logical.index))
        how = (
            "the same definition as"
            if identical
            else ("the same keys as" if len(_key_defs(small)) == len(_key_defs(big)) else "a left prefix of")
        )
        findings.append(
            _finding(
                Kind.DUPLICATE_INDEX,
                Severity.WARNING,
                target,
                logical,
                f"{logical.name} has {how} {kept.name}: every lookup it serves, the other serves too",
                logical.drop_sql() + f"\n-- kept: {big.definition};",
                {
                    "duplicate_of": kept.index,
                    "identical": identical,
                    "size_bytes": small.size_bytes,
                    "idx_scan": small.idx_scan,
                    "definition": small.definition,
                },
            )
        )
    return tuple(findings)


# --- invalid_index -------------------------------------------------------------------------


def invalid_index(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """An index marked invalid: a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY that failed.

    It is kept up to date on every write but never used for reads. One being
    built right now is invalid too until it finishes, which the summary says.
    A unique one most likely failed on duplicates, so the fix drops it
    (rebuilding would fail again); another is rebuilt.
    """
    if obs.on_standby and obs.primary_watched:  # the same catalog: reported once, on the primary
        return
    for index in _indexes(obs):
        if index.is_valid:
            continue
        logical = LogicalIndex(index.database, index.schema, index.relation, index.index, False, (index,))
        if index.is_unique:  # it failed on duplicate rows: rebuilding fails the same way
            fix = (
                f"DROP INDEX CONCURRENTLY {logical.name};\n-- then remove the duplicate rows and: "
                + index.definition.replace("INDEX ", "INDEX CONCURRENTLY ", 1)
                + ";"
            )
        else:
            fix = (
                f"REINDEX INDEX CONCURRENTLY {logical.name};\n"
                f"-- or, if it is not needed: DROP INDEX CONCURRENTLY {logical.name};"
            )
        yield _finding(
            Kind.INVALID_INDEX,
            Severity.WARNING,
            obs.target,
            logical,
            f"{logical.name} is invalid (a failed CREATE INDEX CONCURRENTLY, unless one is running now):"
            " writes maintain it, reads never use it",
            fix,
            {"definition": index.definition, "size_bytes": index.size_bytes},
        )


# --- missing_fk_index ----------------------------------------------------------------------


def fk_is_indexed(fk: ForeignKey) -> bool:
    """Some index's leading key columns are the foreign key's columns, in any order."""
    wanted = set(fk.columns)
    for keys in fk.index_keys:
        lead = keys.split(",")[: len(fk.columns)]
        if len(lead) == len(fk.columns) and set(lead) == wanted:
            return True
    return False


def missing_fk_index(obs: Observation, t: Thresholds) -> Iterator[Finding]:
    """Foreign keys on a large table whose columns no index leads with; one finding per table.

    Every DELETE or key UPDATE on the referenced table then scans the
    referencing table, under lock, and joins along the key cannot use an
    index. Small referencing tables are left out (a scan is cheap). Each
    index is an ``index_candidates`` entry: where a seq_scan's index leads
    with the key, the finding points to it (``onefix``).
    """
    if obs.on_standby and obs.primary_watched:  # the same catalog: reported once, on the primary
        return
    snap: ForeignKeysSnapshot | None = obs.snapshots.foreign_keys
    if snap is None:
        return
    by_table: dict[tuple[str, str, str], list[ForeignKey]] = defaultdict(list)
    for fk in snap.foreign_keys:
        if not fk_is_indexed(fk) and is_large(fk.reltuples, fk.size_bytes, t):
            by_table[(fk.database, fk.schema, fk.relation)].append(fk)
    for (database, schema, relation), fks in by_table.items():
        table = qualified(schema, relation)
        candidates = [
            {
                "columns": list(fk.columns),
                "equality": len(fk.columns),
                "partitioned": fk.relkind == "p",
                "sql": create_index_sql(schema, relation, fk.columns, fk.relkind == "p"),
            }
            for fk in fks
        ]
        keys = "; ".join(
            f"{fk.constraint_name} ({', '.join(fk.columns)}) to "
            f"{qualified(fk.referenced_schema, fk.referenced_relation)}"
            for fk in fks
        )
        size = human_bytes(fks[0].size_bytes)
        yield Finding(
            Kind.MISSING_FK_INDEX,
            Severity.WARNING,
            obs.target,
            f"{table} ({fks[0].reltuples:,.0f} rows, {size}): no index leads with the foreign key {keys}; "
            "deletes and key updates there scan this table",
            "\n".join(create_index_sql(schema, relation, fk.columns, fk.relkind == "p") for fk in fks),
            {
                "constraints": [fk.constraint_name for fk in fks],
                "columns": [list(fk.columns) for fk in fks],
                "referenced": [f"{fk.referenced_schema}.{fk.referenced_relation}" for fk in fks],
                "reltuples": fks[0].reltuples,
                "size_bytes": fks[0].size_bytes,
                "index_candidates": candidates,
            },
            database=database,
            schema=schema,
            relation=relation,
        )


CLASSIFIERS = (unused_index, duplicate_index, invalid_index, missing_fk_index)
