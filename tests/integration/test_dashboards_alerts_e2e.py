"""Dashboards and alerts end to end: the real agent, a real Prometheus, a real Alertmanager.

The plain ``pgradar run`` (its real classifiers) watches a real primary with
planted problems, its streaming standby, a pgbouncer in front of it and a
target on a closed port:

- tables and indexes: an invalid, an unused and a duplicate index, and a table
  with most of its rows dead and autovacuum off (a critical dead_tuples);
- replication: the standby's replay paused while the primary writes
  (replication_lag), and an inactive physical slot retaining that WAL
  (replication_slot_inactive);
- sessions and pools: a session idle in a transaction, connections near a
  small max_connections, and more pgbouncer clients running pg_sleep than
  pool_size (pool_saturation; the sleepers are long statements too).

Thresholds a test cannot wait for (a week of index statistics, gigabytes of
WAL) are lowered in the agent's config file, as an operator would.
Prometheus (Debian package) scrapes it every second with the rule files
loaded and sends alerts to Alertmanager, which delivers them to a webhook
receiver in this test.

Then: every dashboard panel's query, variables filled in, returns data from
that Prometheus (no exceptions); the planted problems' alerts fire, with the
labels on-call routes by; the alerts for healthy objects (and the critical
tiers) do not; Alertmanager delivers.

The rule files are the committed ones with every ``for:`` shortened to a few
seconds, and the warning thresholds of the two duration alerts lowered (10
minutes idle in transaction and 15 minutes of run time would make this test
last that long); critical tiers keep their thresholds and must stay silent.
Heavy: it runs on the newest server version only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import yaml
from support import (
    BOUNCER_CLIENT_PASSWORD,
    HEAVY,
    MONITOR_PASSWORD,
    MONITOR_ROLE,
    Bouncer,
    find_pgbouncer,
    installation,
    monitor_dsn,
    prepare,
    scrape,
    superuser,
    wait_for,
)

from pgradar.agent.model.findings import Kind, Severity
from pgradar.alerts import rule_files
from pgradar.commands.embedded import Cluster, Installation, Sandbox, free_port
from pgradar.dashboards import JSON_DIR

FOR = "2s"
# (alert, severity) -> (text in the committed expression, text in the e2e copy)
LOWERED = {
    ("PostgresIdleInTransaction", Severity.WARNING): ("> 600", "> 4"),
    ("PostgresLongRunningQuery", Severity.WARNING): ("> 900", "> 4"),
}
MAX_CONNECTIONS = 30
WANTED_SESSIONS = 23  # of 27 usable (30 - 3 reserved): above 80%, below 95%
MB = 1024 * 1024
# The agent's thresholds: warnings within reach of a test, critical tiers out of it (they must stay silent).
THRESHOLDS = {
    "unused_index_min_bytes": 8192,
    "dead_tuples_min_rows": 1000,
    "replication_lag_warning_bytes": 1 * MB,
    "slot_retained_warning_bytes": 1 * MB,
    "pool_maxwait_warning_s": 1,
    "pool_maxwait_critical_s": 3600,
}
FAST = {
    "server": 1,
    "activity": 1,
    "database": 1,
    "statements": 1,
    "tables": 1,
    "indexes": 1,
    "settings": 1,
    "foreign_keys": 5,
    "plans": 5,
    "replication": 1,
    "sessions": 1,
    "classify": 1,
    "pgbouncer": 1,
    "load": 1,
    "vacuum": 1,
    "bloat": 5,
}
STANDBY = "e2e-standby"
# main's cores in the agent's config, below the CPU load of cpu_burner's one session as sampled on a
# machine this busy (the sampler misses samples when the agent's process is starved: never invented)
CORES = 0.1
POOL_SIZE, POOL_CLIENTS = 2, 5
TARGETS = "(main|replica|bouncer)"  # what Grafana puts in $target for a multi-value selection
VARIABLES = {"$__rate_interval": "10s", "$__range": "5m", "$target": TARGETS, "$database": "app"}


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: apt-get install prometheus prometheus-alertmanager (or `make system`)",
            pytrace=False,
        )
    return path


def e2e_rules(out: Path) -> list[Path]:
    """The committed rule files with short for: and the lowered warning thresholds."""
    written, lowered = [], set()
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["for"] = FOR
                key = (rule["alert"], rule["labels"]["severity"])
                if key in LOWERED:
                    old, new = LOWERED[key]
                    assert old in rule["expr"], f"{key}: the committed rule changed, update LOWERED"
                    rule["expr"] = rule["expr"].replace(old, new)
                    lowered.add(key)
        target = out / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    assert lowered == set(LOWERED)
    return written


# --- child processes --------------------------------------------------------------------------


@contextmanager
def process(args: list[str], log: Path, port: int, ready_path: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}  # the agent refuses unknown ones
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, env=env)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{args[0]} exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, 60, what=f"{Path(args[0]).name} to be ready")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Webhook:
    """A local Alertmanager webhook receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def alerts(self) -> list[dict]:
        return [alert for message in list(self.received) for alert in message["alerts"]]


class Prometheus:
    def __init__(self, port: int) -> None:
        self.port = port

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def firing(self) -> set[tuple[str, ...]]:
        return {
            (
                a["metric"]["alertname"],
                a["metric"]["severity"],
                a["metric"].get("target", ""),
                a["metric"].get("database", ""),
            )
            for a in self.query('ALERTS{alertstate="firing"}')
        }


# --- the planted problems -------------------------------------------------------------------------


def plant_tables(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, kind int, note text)")
        conn.execute("CREATE INDEX items_kind ON items (kind)")
        conn.execute("CREATE INDEX items_note ON items (note)")  # never scanned
        conn.execute("CREATE INDEX items_note_again ON items (note)")  # and a duplicate of it
        conn.execute("INSERT INTO items SELECT g, g % 7, 'n' || g FROM generate_series(1, 5000) g")
        conn.execute("DELETE FROM items WHERE id % 10 = 0")
        with pytest.raises(psycopg.errors.UniqueViolation):  # leaves an invalid index behind
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY items_kind_unique ON items (kind)")
        conn.execute("ANALYZE items")
        conn.execute("VACUUM items")
        conn.execute("DELETE FROM items WHERE id % 10 = 1")
        # Most of a table dead and autovacuum off for it: dead_tuples, critical.
        conn.execute("CREATE TABLE churn (id int, pad text) WITH (autovacuum_enabled = off)")
        conn.execute("INSERT INTO churn SELECT g, 'x' FROM generate_series(1, 10000) g")  # no ANALYZE: DESIGN 7
        conn.execute("DELETE FROM churn WHERE id % 10 < 7")
        # Vacuum panels: a table and its key with space a VACUUM left free (fixed-width columns, estimated
        # without pg_stats), and a table the application updates (HOT share).
        conn.execute("CREATE TABLE holes (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO holes SELECT g, g FROM generate_series(1, 20000) g")
        conn.execute("DELETE FROM holes WHERE id % 2 = 0")
        conn.execute("VACUUM ANALYZE holes")
        conn.execute("CREATE TABLE counters (id int PRIMARY KEY, n int)")
        conn.execute("INSERT INTO counters SELECT g, 0 FROM generate_series(1, 10) g")
        for i in range(40):
            conn.execute("SELECT count(*) FROM items WHERE kind = %s", (i % 7,))
            conn.execute("SELECT sum(id) FROM items")


@contextmanager
def app_workload(cluster: Cluster) -> Iterator[None]:
    """The application's statements, a few times a second, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        with superuser(cluster, "app") as conn:
            i = 0
            while not stop.is_set():
                conn.execute("SELECT count(*) FROM items WHERE kind = %s", (i % 7,))
                conn.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (i % 10 + 1,))
                i += 1
                stop.wait(0.1)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(10)


@contextmanager
def cpu_burner(cluster: Cluster) -> Iterator[None]:
    """One session on CPU all the time (short PL/pgSQL loops): CPU load above CORES."""
    stop = threading.Event()
    with superuser(cluster, "app") as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION burn(n int) RETURNS bigint LANGUAGE plpgsql AS"
            " $$ DECLARE x bigint := 0; BEGIN FOR i IN 1..n LOOP x := x + i; END LOOP; RETURN x; END $$"
        )

    def run() -> None:
        with superuser(cluster, "app") as conn:
            while not stop.is_set():
                conn.execute("SELECT burn(300000)")

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(30)


def write_wal(cluster: Cluster) -> None:
    """A few MB of WAL the paused standby does not replay and the slot keeps."""
    with superuser(cluster, "postgres") as conn:
        conn.execute("CREATE TABLE wal_writer (id int, pad text)")
        conn.execute("INSERT INTO wal_writer SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g")
        conn.execute("DROP TABLE wal_writer")


def caught_up(primary: Cluster) -> bool:
    with superuser(primary) as conn:
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication "
            "WHERE application_name = %s",
            (STANDBY,),
        ).fetchone()
    return row is not None and row[0] == 0


@contextmanager
def pool_clients(bouncer: Bouncer) -> Iterator[None]:
    """More clients than pool_size, each running a long pg_sleep: some run (long statements), the rest wait."""
    dsn = bouncer.dsn("app", "postgres", BOUNCER_CLIENT_PASSWORD)

    def client() -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_sleep(600)")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(POOL_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        bouncer.stop()  # every client's connection ends with it
        for thread in threads:
            thread.join(30)


@pytest.fixture(params=HEAVY[-1:], ids=lambda v: f"pg{v}")
def small_pg(
    request: pytest.FixtureRequest, installations: dict[int, Installation], sandbox: Sandbox
) -> Iterator[tuple[Cluster, Cluster]]:
    """A primary of its own with a small max_connections, and its streaming standby."""
    cluster = sandbox.cluster(
        installation(installations, request.param), f"e2e{request.param}", {"max_connections": str(MAX_CONNECTIONS)}
    )
    prepare(cluster)
    standby = sandbox.standby(cluster, STANDBY)
    yield cluster, standby
    for c in (standby, cluster):
        c.stop("immediate")
        sandbox.clusters.remove(c)


def agent_config(path: Path, port: int, primary: Cluster, standby: Cluster, bouncer: Bouncer) -> Path:
    """The agent's config file, as an operator writes it: targets, the pgbouncer, fast polls, thresholds."""
    path.write_text(
        yaml.safe_dump(
            {
                "targets": [
                    # the cores as an operator states them (CORES)
                    {"name": "main", "dsn": monitor_dsn(primary), "cpus": CORES},
                    {"name": "replica", "dsn": monitor_dsn(standby)},
                    {"name": "down", "dsn": f"host=127.0.0.1 port={free_port()} dbname=postgres user=pgradar"},
                ],
                "pgbouncers": [{"name": "bouncer", "dsn": bouncer.dsn("pgbouncer", MONITOR_ROLE, MONITOR_PASSWORD)}],
                "listen": f"127.0.0.1:{port}",
                "intervals": FAST,
                "thresholds": THRESHOLDS,
            }
        )
    )
    return path


def test_dashboards_and_alerts_against_real_prometheus(
    small_pg: tuple[Cluster, Cluster], sandbox: Sandbox, tmp_path: Path
) -> None:
    began = time.monotonic()
    prometheus_bin, alertmanager_bin = binary("prometheus"), binary("prometheus-alertmanager")
    pgbouncer_bin = find_pgbouncer()
    if pgbouncer_bin is None:
        pytest.fail("pgbouncer is not installed here: apt-get install pgbouncer", pytrace=False)
    primary, standby = small_pg
    plant_tables(primary)
    wait_for(lambda: caught_up(primary), 60, what="the standby to catch up")
    with superuser(standby) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")  # the standby falls behind from here on
    with superuser(primary) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot('forgotten', true)")  # no consumer, ever
    write_wal(primary)
    rules = e2e_rules(tmp_path)
    with ExitStack() as stack:
        bouncer = Bouncer(
            pgbouncer_bin,
            sandbox.root / f"e2e-pgbouncer-{free_port()}",
            primary,
            {"app": "app"},
            {"postgres": BOUNCER_CLIENT_PASSWORD, MONITOR_ROLE: MONITOR_PASSWORD},
            (MONITOR_ROLE,),
            {"default_pool_size": str(POOL_SIZE), "pool_mode": "session"},
        ).start()
        stack.callback(bouncer.stop)
        stack.enter_context(pool_clients(bouncer))
        stack.enter_context(cpu_burner(primary))
        hook = stack.enter_context(Webhook())
        am_port, prom_port = free_port(), free_port()
        (tmp_path / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "hook",
                        "group_by": ["alertname", "target"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [{"name": "hook", "webhook_configs": [{"url": f"http://127.0.0.1:{hook.port}/"}]}],
                }
            )
        )
        stack.enter_context(
            process(
                [
                    alertmanager_bin,
                    f"--config.file={tmp_path / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
                am_port,
                "/-/ready",
            )
        )
        agent_port = free_port()
        config = agent_config(tmp_path / "pgradar.yml", agent_port, primary, standby, bouncer)
        stack.enter_context(
            process(
                [sys.executable, "-m", "pgradar.commands.cli", "run", "--config", str(config)],
                tmp_path / "agent.log",
                agent_port,
                "/healthz",
            )
        )
        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(p) for p in rules],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                    "scrape_configs": [
                        {"job_name": "pgradar", "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}]}
                    ],
                }
            )
        )
        stack.enter_context(
            process(
                [
                    prometheus_bin,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp_path / "prometheus.log",
                prom_port,
                "/-/ready",
            )
        )
        prom = Prometheus(prom_port)

        # The planted session problem, then connections up to WANTED_SESSIONS.
        idle = stack.enter_context(superuser(primary, "app"))
        idle.autocommit = False
        idle.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # its snapshot holds the xmin horizon
        idle.execute("SELECT 1")  # BEGIN; SELECT 1; and then nothing: idle in transaction
        wait_for(
            lambda: (
                prom.query('pgradar_up{target="main"} == 1')
                and prom.query("pgradar_sessions")
                and prom.query('pgradar_pgbouncer_clients{state="waiting"} > 0')
            ),
            60,
            what="Prometheus to scrape the agent with the targets up and clients waiting in pgbouncer",
        )
        time.sleep(2)  # the agent sees the planted sessions
        counted = sum(float(r["value"][1]) for r in prom.query('sum(pgradar_sessions{target="main"})'))
        extra = int(WANTED_SESSIONS - counted)
        assert 0 <= extra < MAX_CONNECTIONS - 5, counted
        for _ in range(extra):
            stack.enter_context(superuser(primary, "postgres"))

        expected = {
            ("PgradarTargetDown", Severity.CRITICAL, "down", ""),
            ("PostgresIdleInTransaction", Severity.WARNING, "main", "app"),
            ("PostgresLongRunningQuery", Severity.WARNING, "main", "app"),  # the pgbouncer clients' pg_sleep
            ("PostgresConnectionsNearLimit", Severity.WARNING, "main", ""),
            ("PgradarCriticalProblem", Severity.CRITICAL, "main", "app"),  # dead_tuples of churn
            ("PostgresReplicationLag", Severity.WARNING, "main", ""),
            ("PostgresReplicationSlotInactive", Severity.WARNING, "main", ""),
            ("PgbouncerPoolSaturation", Severity.WARNING, "bouncer", ""),
            ("PostgresCPULoadAboveCores", Severity.WARNING, "main", ""),  # cpu_burner, above CORES
        }
        try:
            wait_for(lambda: prom.firing() >= expected, 90, step=1, what="the planted alerts to fire")
        except AssertionError:
            problems = json.loads(scrape(agent_port, "/problems"))["problems"]
            raise AssertionError(
                f"missing: {expected - prom.firing()}; firing: {prom.firing()}; problems: "
                f"{[(p['target'], p['kind'], p['severity']) for p in problems]}; agent log: "
                f"{(tmp_path / 'agent.log').read_text()[-3000:]}"
            ) from None
        time.sleep(3)  # a few more evaluations: nothing else fires
        firing = prom.firing()
        assert firing == expected, f"alerts for healthy objects fired: {firing - expected}"
        alerts = prom.query('ALERTS{alertstate="firing"}')
        labels = {a["metric"]["alertname"]: a["metric"] for a in alerts}
        assert labels["PgradarTargetDown"]["job"] == "pgradar" and labels["PgradarTargetDown"]["instance"]
        assert labels["PostgresReplicationLag"]["standby"] == STANDBY
        assert labels["PostgresReplicationSlotInactive"]["slot"] == "forgotten"
        assert labels["PgbouncerPoolSaturation"]["pool"] == "app/postgres"
        problems = json.loads(scrape(agent_port, "/problems"))["problems"]
        cpu = [p for p in problems if p["kind"] == "wait_bottleneck" and p["target"] == "main"]
        assert [(p["database"], p["wait_event"]) for p in cpu] == [("app", "CPU")], cpu
        assert cpu[0]["evidence"]["top_statements"][0]["statement"] == "SELECT burn($1)", cpu
        critical = next(a["metric"] for a in alerts if a["metric"]["alertname"] == "PgradarCriticalProblem")
        assert (critical["kind"], critical["relation"]) == (Kind.DEAD_TUPLES, "churn"), critical

        # Every panel's query returns data.
        # The application keeps querying while the panels are read: per-statement series rank what ran in
        # the kept intervals (rate() needs it running), and the agent's own (marked) statements never count.
        stack.enter_context(app_workload(primary))
        wait_for(
            lambda: prom.query('pgradar_statement_calls_total{target="main", database="app"}'),
            60,
            step=1,
            what="per-statement series of the application's statements",
        )
        time.sleep(12)  # more than the panels' 10 s rate window of samples
        report = _check_panels(prom, agent_port)
        log = (tmp_path / "agent.log").read_text()
        assert "Traceback" not in log and MONITOR_PASSWORD not in log

        # Alertmanager delivered the firing alerts to the webhook, runbook link and all.
        wanted_names = {name for name, *_ in expected}
        wait_for(
            lambda: {x["labels"]["alertname"] for x in hook.alerts()} >= wanted_names,
            60,
            what="Alertmanager to deliver every firing alert",
        )
        down = next(x for x in hook.alerts() if x["labels"]["alertname"] == "PgradarTargetDown")
        assert down["status"] == "firing" and down["labels"]["target"] == "down"
        assert down["labels"]["severity"] == Severity.CRITICAL
        assert down["annotations"]["runbook_url"].endswith("/alerts/RUNBOOK.md#pgradartargetdown")
        assert "down" in down["annotations"]["summary"]
        # The descriptions quote the raw numbers the exporter has for the object.
        described = {x["labels"]["alertname"]: x["annotations"]["description"] for x in hook.alerts()}
        assert re.search(r"Now [\d.]+MiB of WAL are not replayed", described["PostgresReplicationLag"]), described
        assert re.search(r"It retains [\d.]+MiB of WAL now", described["PostgresReplicationSlotInactive"]), described
        assert re.search(r"\b[1-3] client\(s\) wait, the oldest for ", described["PgbouncerPoolSaturation"]), described
        print(f"{report}; firing: {sorted(name for name, *_ in firing)}; {time.monotonic() - began:.0f}s")


def _substitute(expr: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    assert "$" not in expr, expr
    return expr


def _label_values(query: str) -> str:
    """Grafana's label_values(selector, label) as PromQL."""
    match = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
    assert match, query
    return f"group by ({match.group(2)}) ({match.group(1)})"


def _vacuum_rules() -> list[dict]:
    doc = yaml.safe_load(next(p for p in rule_files() if p.name == "pgradar-vacuum.rules.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _check_panels(prom: Prometheus, agent_port: int) -> str:
    """Run every panel query and variable query: each must return data. Returns a one-line report."""
    queryids = prom.query('group by (queryid) (pgradar_statement_calls_total{target="main", database="app"})')
    assert queryids, "no per-statement series for database app"
    values = {**VARIABLES, "$queryid": queryids[0]["metric"]["queryid"]}
    problems = json.loads(scrape(agent_port, "/problems"))["problems"]
    planted = {(p["kind"], p["index"]) for p in problems if p["relation"] == "items"}
    assert planted >= {
        ("invalid_index", "items_kind_unique"),
        ("unused_index", "items_note"),
        ("duplicate_index", "items_note_again"),
    }, problems
    with_data, empty = 0, []
    for path in sorted(JSON_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert prom.query(_substitute(_label_values(variable["query"]), values)), (
                    f"{path.name}: variable {variable['name']} has no values"
                )
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = _substitute(target["expr"], values)
                if prom.query(expr):
                    with_data += 1
                else:
                    empty.append(f"{path.stem} / {panel['title']}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # The vacuum alerts stay silent here (nothing is held for an hour, no database is 500 M multixacts
    # old): their series, the expression without its threshold, must still be there to compare.
    for rule in _vacuum_rules():
        series = rule["expr"].rsplit(" > ", 1)[0]
        assert prom.query(series), f"{rule['alert']}: no data for {series}"
    return f"{with_data} panel queries returned data (active kinds: {sorted({p['kind'] for p in problems})})"
