"""What a /metrics render costs a fleet: a cold render, and the renders after a few targets' jobs.

    python bench/exposition.py                                   # this tree
    PYTHONPATH=<a tree of another commit> python bench/exposition.py   # that commit, same state

No database: the state of ``--targets`` targets is built in memory, each like
one of bench/fleet.py's (100 tables, 3 indexes each, 200 statements, a few
problems). A round changes what the jobs of a settle window change in a
fleet (``--changed`` targets ran a job; one in four of them read new table
counters), then renders the OpenMetrics body as ``Exposition`` does. Printed:
the cold render, the median and max round, the body's size and series. The
render holds the interpreter, so its time is time the scheduler's threads and
the scrapes wait; run it under the same load for the trees compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from factories import T0, index, snap, stat, table  # noqa: E402
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402

from pgradar.agent.derive.deltas import statement_deltas  # noqa: E402
from pgradar.agent.model.catalog import IndexesSnapshot, TablesSnapshot  # noqa: E402
from pgradar.agent.model.findings import Finding, Kind, Severity  # noqa: E402
from pgradar.agent.model.jobs import COLLECTOR_NAMES  # noqa: E402
from pgradar.agent.model.server import ServerInfo  # noqa: E402
from pgradar.agent.model.statements import StatementTotals  # noqa: E402
from pgradar.agent.runtime.problems import ActiveProblem  # noqa: E402
from pgradar.agent.runtime.state import AgentState, TargetState  # noqa: E402
from pgradar.exporters.prometheus import registry_for  # noqa: E402


def target(name: str, tables: int, statements: int) -> TargetState:
    t = TargetState(name)
    t.up = True
    t.server = ServerInfo(180006, False, started_at=T0)
    before = snap(0, *[stat(q, 1, 1.0) for q in range(statements)])
    after = snap(1, *[stat(q, 2 + q, 1.0 + q) for q in range(statements)])
    t.record("statements", before)
    t.record("statements", after)
    interval = statement_deltas(before, after)
    t.statement_totals = StatementTotals.empty()
    t.statement_totals.add(interval, {r.key for r in after.rows})
    t.statement_intervals.append(interval)
    rows = tuple(table(f"t{i}", relid=i, seq_tup_read=i, schema=f"s{i % 2}") for i in range(tables))
    t.record("tables", TablesSnapshot(T0, rows))
    t.record(
        "tables",
        TablesSnapshot(T0 + timedelta(minutes=1), tuple(replace(r, seq_tup_read=2 * i) for i, r in enumerate(rows))),
    )
    indexes = tuple(
        index(f"t{i}_{k}", ["a"], relation=f"t{i}", indexrelid=3 * i + k, idx_scan=k * i)
        for i in range(tables)
        for k in range(3)
    )
    t.record("indexes", IndexesSnapshot(T0, indexes))
    problems = {}
    for i in range(5):
        finding = Finding(
            Kind.UNUSED_INDEX,
            Severity.WARNING,
            name,
            f"t{i}_2 is never used",
            "DROP INDEX",
            database="app",
            schema=f"s{i % 2}",
            relation=f"t{i}",
            index=f"t{i}_2",
        )
        problems[finding.id] = ActiveProblem(finding, T0, T0)
    t.problems = problems
    for collector in COLLECTOR_NAMES:
        status = t.collector(collector)
        status.runs, status.last_duration_s, status.last_success_at = 1, 0.01, T0
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/exposition.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--statements", type=int, default=200)
    parser.add_argument("--changed", type=int, default=20, help="targets that ran a job in each round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)

    state = AgentState({f"db{n:03d}": target(f"db{n:03d}", args.tables, args.statements) for n in range(args.targets)})
    registry = registry_for(state, 50, 200, 200)
    t0 = time.perf_counter()
    body = registry.render(generate_latest, CONTENT_TYPE_LATEST)
    cold = time.perf_counter() - t0
    names = list(state.targets)
    rounds = []
    for r in range(args.rounds):
        for k in range(args.changed):
            t = state.targets[names[(r * args.changed + k) % len(names)]]
            t.collector("activity").runs += 1
            t.collector("activity").last_duration_s = 0.01 * (r + 1)
            if k % 4 == 0:
                latest = t.latest("tables")
                t.record(
                    "tables",
                    TablesSnapshot(
                        latest.taken_at + timedelta(minutes=1),
                        tuple(replace(x, n_tup_ins=x.n_tup_ins + 1) for x in latest.tables),
                    ),
                )
        t0 = time.perf_counter()
        body = registry.render(generate_latest, CONTENT_TYPE_LATEST)
        rounds.append(time.perf_counter() - t0)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{args.targets} targets, {series:,} series, {len(body) / 2**20:.1f} MiB body; cold render "
        f"{cold * 1000:.0f} ms; a round ({args.changed} targets changed): median "
        f"{statistics.median(rounds) * 1000:.0f} ms, max {max(rounds) * 1000:.0f} ms over {args.rounds}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
