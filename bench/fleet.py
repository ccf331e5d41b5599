"""A fleet in one process: one pgradar watching 100 targets, and what each target costs it.

    python bench/fleet.py                                  # 100 targets, 300 s window
    python bench/fleet.py --before 73b83fb                 # and that commit's agent, side by side
    python bench/fleet.py --targets 40 --window 120        # quicker

It starts one PostgreSQL cluster per installed major (13 to 18, or
``--majors``), each with a small catalog (100 tables, 200 statements) and a
trickle of statements, and watches each cluster under several target names
(``pg18-07``...) until there are ``--targets`` of them: to the agent these are
distinct targets with their own sessions, snapshots and jobs, which is what a
fleet costs a process. Default intervals. With ``--before REF`` the agent of
that commit (``git archive``, run from a temporary folder on PYTHONPATH)
watches the same targets at the same time, so both see the same load.

Printed per agent: CPU per target-minute, peak RSS (total and per target),
/metrics latency (a GET every 15 s), series, collector runs done, and (agents
that record it) the share of scheduled runs that
started within a second of their due time (``pgradar_collector_late_runs_total``,
``pgradar_collector_skipped_runs_total``). The load average before and after
is printed: the machine's other work moves the CPU and latency figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
import measure  # noqa: E402
import run as bench  # noqa: E402

ROLE, PASSWORD = "pgradar_fleet", "fleet-S3cret-pw"
FLEET = catalog.Size(
    "fleet",
    databases=1,
    schemas_per_db=2,
    tables_per_schema=50,
    rows_per_table=50,
    statements=200,
    extra_calls=1_000,
    big_tables=0,
    big_rows=0,
    window_s=300,
)
SETTINGS = {"max_connections": "400", "pg_stat_statements.max": "5000", "max_locks_per_transaction": "256"}
PACKAGES = ("agent", "commands", "exporters", "dashboards", "alerts")


def before_tree(ref: str, root: Path) -> Path:
    """The agent of commit ``ref`` as an importable ``pgradar`` namespace under ``root``."""
    src = root / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", ref, *PACKAGES], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    (root / "pgradar").mkdir()
    for package in PACKAGES:
        (root / "pgradar" / package).symlink_to(src / package)
    return root


def config_text(clusters: list, targets: int) -> str:
    lines = ["targets:"]
    for n in range(targets):
        cluster = clusters[n % len(clusters)]
        dsn = cluster.dsn("postgres", user=ROLE, password=PASSWORD)
        lines += [f"  - name: pg{cluster.major}-{n // len(clusters):02d}", f'    dsn: "{dsn}"']
    return "\n".join(lines) + "\n"


def percentiles(values: list[float]) -> str:
    """p50 / p99 / max of ``values`` in seconds, with how many there were."""
    if not values:
        return "not recorded"
    ordered = sorted(values)
    p50, p99 = (ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99))
    return f"{p50:.3f} s / {p99:.3f} s / {ordered[-1]:.3f} s ({len(ordered):,} values)"


def job_counts(samples: list) -> dict[str, float]:
    """Runs, late and skipped runs over every job but classify, and the worker threads the jobs keep busy.

    ``busy`` is Little's law over each job's last run: the sum of its
    duration over its interval is the mean number of runs under way, which a
    thread pool smaller than that can only serve late.
    """
    from pgradar.agent.model.jobs import COLLECTOR_INTERVALS, JOB_INTERVALS

    intervals = {**COLLECTOR_INTERVALS, **JOB_INTERVALS}
    out = {"runs": 0.0, "late": 0.0, "skipped": 0.0, "late_recorded": 0.0, "busy": 0.0}
    lateness = []
    for name, labels, value in samples:
        if name == "pgradar_collector_duration_seconds":
            out["busy"] += value / intervals.get(labels.get("collector", ""), 60.0)
        if labels.get("collector") == "classify":
            continue
        if name == "pgradar_collector_lateness_seconds":
            lateness.append(value)
        if name == "pgradar_collector_runs_total":
            out["runs"] += value
        elif name == "pgradar_collector_late_runs_total":
            out["late"] += value
            out["late_recorded"] = 1.0
        elif name == "pgradar_collector_skipped_runs_total":
            out["skipped"] += value
    lateness.sort()
    for q in (0.5, 0.9, 0.99):
        out[f"late_p{round(q * 100)}"] = lateness[min(len(lateness) - 1, int(q * len(lateness)))] if lateness else -1.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/fleet.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--window", type=float, default=300.0, metavar="SECONDS")
    parser.add_argument("--cadence", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--majors", default="13,16,17,18", help="clusters to start (installed majors)")
    parser.add_argument("--before", metavar="REF", help="also run this commit's agent on the same targets")
    args = parser.parse_args(argv)

    import psycopg

    from pgradar.commands.embedded import Sandbox, find_installations, free_port

    found = find_installations()
    majors = [int(m) for m in args.majors.split(",") if int(m) in found]
    if not majors:
        raise SystemExit(f"bench/fleet.py: none of PostgreSQL {args.majors} is installed")
    load_before = os.getloadavg()
    sandbox = Sandbox()
    procs: list[subprocess.Popen] = []
    workloads: list[catalog.BackgroundWorkload] = []
    tmp = Path(tempfile.mkdtemp(prefix="pgradar-fleet-"))
    try:
        clusters = []
        for major in majors:
            cluster = sandbox.cluster(found[major], f"pg{major}", settings=SETTINGS)
            clusters.append(cluster)

            def dsn_for(database: str, c=cluster) -> str:
                return c.dsn(database)

            catalog.build(dsn_for, FLEET, lambda m, k=major: bench.say(f"pg{k}: {m}"))
            with psycopg.connect(dsn_for("postgres"), autocommit=True) as su:
                su.execute("SELECT pg_stat_statements_reset()")
                su.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
            catalog.run_workload(dsn_for, FLEET, lambda m, k=major: bench.say(f"pg{k}: {m}"))
            workload = catalog.BackgroundWorkload(dsn_for, FLEET, qps=2.0, new_every_s=30.0)
            workload.start()
            workloads.append(workload)
        config = tmp / "fleet.yaml"
        config.write_text(config_text(clusters, args.targets))
        agents: dict[str, tuple[subprocess.Popen, bench.Scrapes]] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
        kinds = [("after", env)]
        if args.before:
            tree = before_tree(args.before, tmp / "before")
            kinds.insert(0, ("before", {**env, "PYTHONPATH": str(tree)}))
        started = time.monotonic()
        for kind, kind_env in kinds:
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "pgradar.commands.cli",
                "run",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
                "--log-level",
                "WARNING",
            ]
            proc = bench.launch(cmd, kind_env, tmp / f"{kind}.log", Path("/"))
            procs.append(proc)
            agents[kind] = (proc, bench.Scrapes(kind, f"http://127.0.0.1:{port}/metrics"))
            bench.wait_listening(port, 60)
        bench.say(
            f"{args.targets} targets on {len(clusters)} clusters (PostgreSQL {', '.join(map(str, majors))}); "
            f"agents: {', '.join(f'{k} pid {p.pid}' for k, (p, _) in agents.items())}; window opens"
        )
        until = started + args.window
        stop = threading.Event()
        scraper = threading.Thread(
            target=bench.scraper,
            args=([s for _, s in agents.values()], args.cadence, started, until, stop),
            daemon=True,
        )
        scraper.start()
        while time.monotonic() < until:
            for kind, (proc, _) in agents.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{kind} agent exited: {bench.tail(tmp / f'{kind}.log')}")
            time.sleep(min(30.0, max(0.0, until - time.monotonic())))
            bench.say(f"{max(0.0, until - time.monotonic()):.0f}s left")
        scraper.join(timeout=120)
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()
        rows = []
        for kind, (proc, scrapes) in agents.items():
            cpu = bench.tree_cpu_seconds(proc.pid)
            rss = bench.peak_rss_bytes(proc.pid) or 0
            _, body, _ = bench.http_get(scrapes.url)
            final = measure.parse_samples(body.decode())
            jobs = job_counts(final)
            on_time = (
                1 - (jobs["late"] + jobs["skipped"]) / max(1.0, jobs["runs"] + jobs["skipped"])
                if jobs["late_recorded"]
                else None
            )
            rows.append(
                (
                    kind,
                    {
                        "agent CPU per target-minute": f"{cpu / args.targets / (elapsed / 60) * 1000:.1f} ms",
                        "agent CPU, cores": f"{cpu / elapsed:.2f}",
                        "peak RSS": f"{rss / 2**20:.0f} MiB",
                        "peak RSS per target": f"{rss / args.targets / 2**20:.2f} MiB",
                        "/metrics latency, median": f"{(measure.median(scrapes.latencies) or 0) * 1000:.0f} ms",
                        "/metrics latency, max": f"{max(scrapes.latencies or [0]) * 1000:.0f} ms",
                        "/metrics latency, each scrape in order": " ".join(f"{x * 1000:.0f}" for x in scrapes.latencies)
                        + " ms",
                        "series": f"{max(scrapes.series or [0]):,}",
                        "collector runs done": f"{jobs['runs']:,.0f}",
                        "runs started on time (<= 1 s late)": "not recorded" if on_time is None else f"{on_time:.1%}",
                        "late, skipped runs": "not recorded"
                        if on_time is None
                        else f"{jobs['late']:,.0f}, {jobs['skipped']:,.0f}",
                        "scrapes (failed)": f"{len(scrapes.latencies)} ({len(scrapes.errors)})",
                        "lateness of each job's last run, p50 / p90 / p99": "not recorded"
                        if on_time is None
                        else " / ".join(f"{jobs[f'late_p{q}']:.2f} s" for q in (50, 90, 99)),
                        "runs under way, mean (sum of duration / interval)": f"{jobs['busy']:.1f}",
                        "load sampler: lateness at every scrape, p50 / p99 / max": percentiles(scrapes.load_lateness),
                        "load sampler: runs, late, skipped": " / ".join(
                            f"{sum(v for n, lab, v in final if n == name and lab.get('collector') == 'load'):,.0f}"
                            for name in (
                                "pgradar_collector_runs_total",
                                "pgradar_collector_late_runs_total",
                                "pgradar_collector_skipped_runs_total",
                            )
                        ),
                    },
                )
            )
        print()
        print(
            f"## fleet: {args.targets} targets on {len(clusters)} clusters "
            f"({FLEET.tables} tables, {FLEET.statements} statements each); window {elapsed:.0f}s, "
            f"scrape every {args.cadence:.0f}s; load average {load_before[0]:.2f} before, "
            f"{load_after[0]:.2f} after ({os.cpu_count()} CPUs)"
        )
        print()
        names = [k for k, _ in rows]
        print("| figure | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for figure in rows[0][1]:
            print(f"| {figure} | " + " | ".join(r[figure] for _, r in rows) + " |")
        return 0
    finally:
        for w in workloads:
            w.stop()
        for p in reversed(procs):
            bench.stop_process(p)
        sandbox.close()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    sys.exit(main())
