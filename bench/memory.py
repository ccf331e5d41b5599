"""Where the agent's memory goes on the benchmark's catalog: tracemalloc over complete passes, in one process.

    python bench/memory.py --size small            # about 2 minutes
    python bench/memory.py --size full --passes 3  # the full catalog: build, then 3 passes

Builds the catalog as ``run.py`` does on a PostgreSQL 18 of its own, then in
this process runs every collector of one target ``--passes`` times, classifies,
and renders /metrics in both formats (what ``pgradar run`` holds between two
polls), with tracemalloc on from before the first pass. Prints the process's
RSS (now and peak), what tracemalloc saw (now and peak), and the allocation
sites holding the most memory at the end, by line and by file.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
import run as bench  # noqa: E402


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def short(filename: str) -> str:
    for marker in ("/site-packages/", "/wt-", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1].split("/", 1)[-1] if marker == "/wt-" else filename.split(marker)[1]
    return filename


def report(snapshot: tracemalloc.Snapshot, top: int) -> None:
    print(f"\nheld at the end, by line (top {top}):")
    for stat in snapshot.statistics("lineno")[:top]:
        frame = stat.traceback[0]
        print(f"  {stat.size / 2**20:8.2f} MiB {stat.count:9,} blocks  {short(frame.filename)}:{frame.lineno}")
    print(f"\nheld at the end, by file (top {top}):")
    for stat in snapshot.statistics("filename")[:top]:
        print(f"  {stat.size / 2**20:8.2f} MiB {stat.count:9,} blocks  {short(stat.traceback[0].filename)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/memory.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(catalog.SIZES), default="small")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)

    import psycopg
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST
    from prometheus_client.openmetrics.exposition import generate_latest as openmetrics

    from pgradar.agent.runtime.agent import Agent
    from pgradar.agent.settings import config as configuration
    from pgradar.commands.embedded import Sandbox
    from pgradar.exporters.prometheus import registry_for

    size = catalog.SIZES[args.size]
    started = time.monotonic()
    with Sandbox() as sandbox:
        cluster = sandbox.cluster(bench.find_postgres(), "memory", settings=bench.CLUSTER_SETTINGS)

        def dsn_for(database: str) -> str:
            return cluster.dsn(database)

        counts = catalog.build(dsn_for, size, bench.say)
        with psycopg.connect(dsn_for("postgres"), autocommit=True) as su:
            su.execute("SELECT pg_stat_statements_reset()")
        catalog.run_workload(dsn_for, size, bench.say)
        built = time.monotonic() - started
        rss_before = rss_mib()[0]
        tracemalloc.start()
        cfg = configuration.build({"targets": [{"name": "bench", "dsn": dsn_for("postgres")}]})
        agent = Agent(cfg)
        registry = registry_for(agent.state, cfg.top_statements, cfg.top_tables, cfg.top_indexes)
        bodies = {}
        try:
            for n in range(1, args.passes + 1):
                t0 = time.monotonic()
                agent.run_once()
                bodies["text"] = registry.render(generate_latest, "text/plain; version=0.0.4")
                bodies["openmetrics"] = registry.render(openmetrics, CONTENT_TYPE_LATEST)
                current, peak = tracemalloc.get_traced_memory()
                bench.say(
                    f"pass {n}: {time.monotonic() - t0:.1f}s; traced {current / 2**20:.1f} MiB "
                    f"(peak {peak / 2**20:.1f}); RSS {rss_mib()[0]:.1f} MiB"
                )
            snapshot = tracemalloc.take_snapshot()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            agent.stop()
        rss_now, rss_peak = rss_mib()
        tracemalloc.stop()
        gc.collect()
        rss_collected = rss_mib()[0]
        trimmed = ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed C heap back to the system
        rss_trimmed = rss_mib()[0]
    print(
        f"\n## memory: {args.size} catalog ({counts.get('tables', 0):,} tables, {counts.get('indexes', 0):,} "
        f"indexes), {args.passes} complete passes in one process; built in {built:.0f}s\n"
    )
    print(f"RSS before the agent {rss_before:.1f} MiB, at the end {rss_now:.1f} MiB, peak {rss_peak:.1f} MiB")
    print(
        f"after gc.collect() {rss_collected:.1f} MiB; after malloc_trim(0) {rss_trimmed:.1f} MiB "
        f"(returned: {bool(trimmed)}): what the C allocator kept of memory already freed"
    )
    print(f"traced by tracemalloc: {current / 2**20:.1f} MiB held at the end, {peak / 2**20:.1f} MiB at the peak")
    print(f"/metrics bodies held: {sum(len(b) for b in bodies.values()) / 2**20:.1f} MiB (both formats)")
    report(snapshot, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
