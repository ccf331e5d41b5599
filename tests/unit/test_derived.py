"""Per-snapshot derivations: computed once per snapshot and target, however many passes read them."""

import sys
from datetime import timedelta

from factories import T0, index, server, snap, stat, table

from pgradar.agent.classifiers import classify
from pgradar.agent.classifiers.indexes import duplicate_findings, duplicate_pairs, logical_indexes
from pgradar.agent.derive.deltas import by_key, statement_deltas
from pgradar.agent.derive.derived import PerSnapshot, per_snapshot, snapshot_scope
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot
from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.state import AgentState, TargetState
from pgradar.exporters.prometheus import RelationsCollector, StateCollector


def test_per_snapshot_computes_once_per_rows_tuple() -> None:
    calls: list[tuple[int, ...]] = []

    @per_snapshot
    def total(rows: tuple[int, ...]) -> int:
        calls.append(rows)
        return sum(rows)

    rows = (1, 2, 3)
    assert total(rows) == 6 and total(rows) == 6
    assert len(calls) == 1
    equal_but_new = tuple(list(rows))  # a new snapshot with the same rows is computed again
    assert total(equal_but_new) == 6 and len(calls) == 2
    for n in range(20):  # old entries are dropped: the cache stays small
        total((n, n + 1000))
    assert total(rows) == 6 and len(calls) == 23


INDEX_RELATIONS = "pgradar.agent.classifiers.predicates._index_relations"
TABLE_RELATIONS = "pgradar.agent.classifiers.predicates._table_relations"
RANKED_TABLES = "pgradar.exporters.series._ranked_tables"
RANKED_INDEXES = "pgradar.exporters.series._ranked_indexes"


def _derivations() -> dict[str, int]:
    """Every per-snapshot function of the package (by its home module), with its count of calls so far."""
    found: dict[int, tuple[str, PerSnapshot[object]]] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("pgradar."):
            for value in vars(module).values():
                if isinstance(value, PerSnapshot):
                    found[id(value)] = (f"{value.__module__}.{value.__qualname__}", value)
    return {name: fn.derivations for name, fn in found.values()}


def _target(n: int) -> TargetState:
    t = TargetState(f"db{n:02d}")
    t.server = server()
    t.record("tables", TablesSnapshot(T0, tuple(table(f"t{n}_{i}", relid=i, seq_scan=i) for i in range(10))))
    indexes = [index(f"i{n}_{i}", ["a"], relation=f"t{n}_{i}", indexrelid=i) for i in range(10)]
    indexes.append(index(f"i{n}_twin", ["a"], relation=f"t{n}_0", indexrelid=99))  # a duplicate to find
    t.record("indexes", IndexesSnapshot(T0, tuple(indexes)))
    t.record("statements", snap(0, stat(1, 10, 5.0), stat(2, 10, 50.0)))
    t.record("statements", snap(1, stat(1, 200, 100.0), stat(2, 20, 100.0)))
    t.statement_texts.update({(5, 1): f"SELECT * FROM t{n}_1 WHERE lower(a) = $1", (5, 2): "SELECT 1"})
    with snapshot_scope(t.name):  # as the runtime does, once after each statements poll
        previous, current = t.kept().statements
        t.statement_intervals.append(statement_deltas(previous, current))
    return t


def test_every_derivation_once_per_snapshot_with_20_targets() -> None:
    """One process, 20 targets, each classified and rendered twice over the same snapshots.

    With one cache of four entries shared by every target, each pass evicted
    the other targets' entries and every pass derived every target again.
    """
    frames = by_key.derivations
    state = AgentState()
    for n in range(20):
        t = _target(n)
        state.targets[t.name] = t
    assert by_key.derivations == frames + 40  # each target's two statements snapshots
    exporters = (RelationsCollector(state, top_tables=10, top_indexes=10), StateCollector(state, top_statements=10))

    def one_pass() -> None:
        for t in state:
            with snapshot_scope(t.name):
                findings, errors = classify(observe(t, T0 + timedelta(minutes=2)), DEFAULT)
            assert errors == [] and any(f.kind == "duplicate_index" for f in findings)
        for exporter in exporters:
            assert list(exporter.collect())

    before = _derivations()
    one_pass()
    first = {name: count - before.get(name, 0) for name, count in _derivations().items()}
    one_pass()
    second = {name: count - before.get(name, 0) - first[name] for name, count in _derivations().items()}

    per_target = {  # what one target's snapshots give each function (private ones by their qualified name)
        **{f"{fn.__module__}.{fn.__qualname__}": 1 for fn in (logical_indexes, duplicate_pairs, duplicate_findings)},
        INDEX_RELATIONS: 1,
        TABLE_RELATIONS: 1,
        RANKED_TABLES: 1,
        RANKED_INDEXES: 1,
    }
    for name, count in per_target.items():
        assert first[name] == 20 * count, name
    assert all(count == 0 for count in second.values()), second  # nothing is derived again

    # a new snapshot of one target: only that target's tables are derived again
    t = state.target("db07")
    t.record("tables", TablesSnapshot(T0, tuple(table(f"x{i}", relid=i) for i in range(10))))
    before = _derivations()
    one_pass()
    again = {name: count - before[name] for name, count in _derivations().items()}
    assert again[RANKED_TABLES] == 1
    assert (again[INDEX_RELATIONS], again[TABLE_RELATIONS]) == (0, 1)


def test_fixed_arguments_reach_the_function_but_not_the_key() -> None:
    @per_snapshot
    def labelled(rows: tuple[int, ...], names: dict[int, str]) -> list[str]:
        return [names[r] for r in rows]

    rows = (1, 2)
    assert labelled(rows, names={1: "a", 2: "b"}) == ["a", "b"]
    assert labelled(rows, names={1: "a", 2: "b"}) == ["a", "b"] and labelled.derivations == 1  # a new dict, same rows
    assert labelled(tuple([1, 2]), names={1: "x", 2: "y"}) == ["x", "y"] and labelled.derivations == 2  # new rows
