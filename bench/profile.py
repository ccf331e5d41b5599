"""Where pgradar spends its time on the benchmark's catalog: py-spy on the agent, pg_stat_statements on the DB.

    python bench/profile.py --size full --seconds 180 [--scrape 15]

Builds the catalog as ``run.py`` does, runs pgradar alone (scraped every
``--scrape`` seconds), records the agent with ``py-spy record`` (``pip
install py-spy``; not a runtime dependency) and prints the functions with the
most samples (self and inclusive) and pgradar's statements by execution time.
Everything stops and the folder is removed on the way out.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
import run  # noqa: E402

TOP_STATEMENTS = """
SELECT round(s.total_exec_time::numeric, 1) AS ms, s.calls, d.datname,
       regexp_replace(left(s.query, 110), '\\s+', ' ', 'g') AS query
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid JOIN pg_database d ON d.oid = s.dbid
 WHERE r.rolname = %s AND s.toplevel
 ORDER BY s.total_exec_time DESC LIMIT 12
"""


# Leaves where a thread waits (for work, a lock, a socket, a timer): py-spy does not always see
# these as idle, and counting them would drown the work in waiting.
WAITING = (
    "_worker (thread.py)",
    "Condition.wait (threading.py)",
    "_PollLikeSelector.select (selectors.py)",
    "Event.wait (threading.py)",
    "Connection.wait (connection.py)",
    "wait (waiting.py)",
)


def summarize(collapsed: Path, top: int = 25) -> None:
    """Self and inclusive sample counts per function from py-spy's collapsed stacks, waits left out."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")" for f in stack.split(";")
        ]
        if frames[-1] in WAITING:
            waiting += n
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"\npy-spy: {total} samples working, {waiting} waiting (left out)")
    print("\nself:")
    for f, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {f}")
    print("\ninclusive:")
    for f, n in incl.most_common(top):
        print(f"  {n / total:6.1%}  {f}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=tuple(catalog.SIZES), default="full")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--scrape", type=float, default=15)
    args = parser.parse_args()
    import psycopg

    from pgradar.commands.embedded import Sandbox, free_port

    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        raise SystemExit("bench/profile.py: py-spy is not installed: pip install py-spy")
    size = catalog.SIZES[args.size]
    sandbox = Sandbox()
    procs: list[subprocess.Popen] = []
    try:
        cluster = sandbox.cluster(run.find_postgres(), "bench", settings=run.CLUSTER_SETTINGS)
        catalog.build(cluster.dsn, size, run.say)
        with psycopg.connect(cluster.dsn(), autocommit=True) as su:
            su.execute("SELECT pg_stat_statements_reset()")
        catalog.run_workload(cluster.dsn, size, run.say)
        with psycopg.connect(cluster.dsn(), autocommit=True) as su:
            su.execute(f"CREATE ROLE {run.PGRADAR_ROLE} LOGIN PASSWORD '{run.PASSWORD}' IN ROLE pg_monitor")
        port = free_port()
        dsn = cluster.dsn("postgres", user=run.PGRADAR_ROLE, password=run.PASSWORD)
        agent = run.launch(
            [
                sys.executable,
                "-m",
                "pgradar.commands.cli",
                "run",
                "--dsn",
                f"bench={dsn}",
                "--listen",
                f"127.0.0.1:{port}",
            ],
            {},
            sandbox.root / "pgradar.log",
            HERE.parent,
        )
        procs.append(agent)
        out = sandbox.root / "profile.txt"
        spy = subprocess.Popen(
            [
                pyspy,
                "record",
                "--pid",
                str(agent.pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--output",
                str(out),
                "--threads",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(spy)
        run.wait_listening(port, 30)
        stop = threading.Event()
        target = run.Scrapes("pgradar", f"http://127.0.0.1:{port}/metrics")
        started = time.monotonic()
        scraper = threading.Thread(
            target=run.scraper, args=([target], args.scrape, started, started + args.seconds, stop), daemon=True
        )
        scraper.start()
        spy.wait(timeout=args.seconds + 120)
        stop.set()
        cpu = run.tree_cpu_seconds(agent.pid)
        print(
            f"\nagent CPU {cpu:.1f}s over {time.monotonic() - started:.0f}s; scrapes "
            f"{', '.join(f'{x * 1000:.0f}ms' for x in target.latencies)}; series {max(target.series or [0])}"
        )
        kept = HERE / "results" / f"profile-{args.size}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
        kept.parent.mkdir(exist_ok=True)
        shutil.copy(out, kept)
        print(f"py-spy stacks kept in {kept}")
        summarize(out)
        print("\nseries by metric name (latest scrape):")
        names = collections.Counter(
            line.split("{")[0].split(" ")[0]
            for line in target.last_body.splitlines()
            if line and not line.startswith("#")
        )
        for name, n in names.most_common(15):
            print(f"  {n:6d}  {name}")
        with psycopg.connect(cluster.dsn(), autocommit=True) as su:
            print("\npgradar's statements by execution time:")
            for ms, calls, db, query in su.execute(TOP_STATEMENTS, [run.PGRADAR_ROLE]).fetchall():
                print(f"  {ms:>9} ms {calls:>5} calls  {db:<9} {query}")
        return 0
    finally:
        for p in reversed(procs):
            run.stop_process(p)
        sandbox.close()


if __name__ == "__main__":
    sys.exit(main())
