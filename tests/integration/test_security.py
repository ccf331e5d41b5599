"""Least privilege, no writes, no literals and no passwords leaving the agent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from support import MONITOR_PASSWORD, MONITOR_ROLE, answers, monitor_dsn, pgradar, scrape, superuser, wait_for

from pgradar.agent.model.thresholds import DEFAULT
from pgradar.agent.runtime.agent import Agent
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster, free_port

WRITES = (
    "DELETE FROM victims WHERE id = 999",
    "UPDATE victims SET note = 'x' WHERE id = 998",
    "INSERT INTO victims VALUES (100000, 'x')",
    "WITH d AS (DELETE FROM victims WHERE id = 997 RETURNING id) SELECT * FROM d",
    "SELECT * FROM victims WHERE id = 996 FOR UPDATE",
    "SELECT evil(1)",
    "DROP TABLE IF EXISTS not_there",
    "TRUNCATE spare",
    "SELECT * INTO copied FROM victims",
)


def test_least_privilege_and_no_statement_text_ever_writes(fresh_pg: Cluster) -> None:
    """As pg_monitor + CONNECT only, then with SELECT to plan: nothing a text says is ever executed."""
    with superuser(fresh_pg, "app") as conn:
        conn.execute("CREATE TABLE victims (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO victims SELECT g, 'n' FROM generate_series(1, 20000) g")
        conn.execute("CREATE TABLE spare (id int)")
        conn.execute("CREATE TABLE evidence (at timestamptz)")
        # A function that writes: running `SELECT evil($1)` would leave a row in evidence.
        conn.execute(
            "CREATE FUNCTION evil(int) RETURNS int LANGUAGE sql AS "
            "$$ INSERT INTO evidence VALUES (now()) RETURNING 1 $$"
        )
        conn.execute("ANALYZE victims")
        for text in WRITES:
            for _ in range(3):
                conn.execute("BEGIN")
                conn.execute(text)
                conn.execute("ROLLBACK")
        for i in range(200):
            conn.execute("SELECT * FROM victims WHERE note = %s", (str(i),))
    with superuser(fresh_pg) as conn:
        conn.execute("REVOKE CONNECT ON DATABASE app FROM PUBLIC")
        conn.execute(f"GRANT CONNECT ON DATABASE app TO {MONITOR_ROLE}")
    thresholds = DEFAULT.__class__(
        **{**{f: getattr(DEFAULT, f) for f in DEFAULT.__slots__}, "explain_top_statements": 50}
    )
    config = Config(targets=(TargetConfig("t", monitor_dsn(fresh_pg), thresholds=thresholds),))

    def run_all() -> Agent:
        agent = Agent(config)
        agent.run_once()
        agent.stop()
        return agent

    agent = run_all()
    state = agent.state.target("t")
    assert state.up and state.server is not None and not state.server.is_superuser
    for name, status in state.status.items():
        assert status.last_error is None and status.enabled, (name, status)
    grant = "pg_read_all_data" if fresh_pg.major >= 14 else None
    with superuser(fresh_pg, "app") as conn:
        if grant:
            conn.execute(f"GRANT {grant} TO {MONITOR_ROLE}")
        else:
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}")
    state = run_all().state.target("t")
    plans = state.current().plans
    assert plans is not None and any(p.summary is not None for p in plans.plans), "nothing was planned"
    with superuser(fresh_pg, "app") as conn:
        assert conn.execute("SELECT count(*) FROM victims").fetchone() == (20000,)
        assert conn.execute("SELECT count(*) FROM evidence").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('copied')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM victims WHERE note = 'x'").fetchone() == (0,)


def _agent(args: list[str]) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGRADAR_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgradar.commands.cli",
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "DEBUG",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return proc, port


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def test_literals_of_running_sessions_never_leave_the_agent(fresh_pg: Cluster, tmp_path: Path) -> None:
    literal_idle, literal_running = "secret-literal-4711", "secret-literal-4712"
    with superuser(fresh_pg, "app") as conn:
        conn.execute("CREATE TABLE accounts (id int, email text)")
    config = tmp_path / "pgradar.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": [{"name": "main", "dsn": monitor_dsn(fresh_pg)}],
                "intervals": {"sessions": 1, "statements": 1, "classify": 1},
                "thresholds": {"idle_in_transaction_warning_s": 1, "long_query_warning_s": 1},
            }
        )
    )
    idle = superuser(fresh_pg, "app")
    running = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import psycopg,sys; c=psycopg.connect(sys.argv[1], autocommit=True); "
            f"c.execute(\"SELECT pg_sleep(60), '{literal_running}'\")",
            fresh_pg.dsn("app"),
        ]
    )
    proc, port = _agent(["--config", str(config)])
    try:
        idle.execute("BEGIN")
        idle.execute(f"SELECT * FROM accounts WHERE email = '{literal_idle}'")

        def both_reported() -> str | None:
            try:
                text = scrape(port, "/problems")
            except OSError:
                return None
            kinds = {p["kind"] for p in json.loads(text)["problems"]}
            return text if {"idle_in_transaction", "long_running_query"} <= kinds else None

        problems = wait_for(both_reported, 60, step=1, what="idle_in_transaction and long_running_query")
        outputs = {"/problems": problems, "/metrics": scrape(port), "/ (status page)": scrape(port, "/")}
        for fmt in ("json", "table", "markdown"):
            checked = pgradar(
                "check",
                "--config",
                str(config),
                "--format",
                fmt,
                "--fail-on",
                "never",
                env={"PGRADAR_LOG_LEVEL": "DEBUG"},
            )
            outputs[f"check {fmt}"] = checked.stdout + checked.stderr
            assert checked.returncode == 0, checked.stderr
        assert "long_running_query" in outputs["check json"]
    finally:
        idle.close()
        running.kill()
        running.wait()
        outputs["log"] = _stop(proc)
    for where, text in outputs.items():
        assert literal_idle not in text and literal_running not in text, f"a literal leaked into {where}"


def _failed_once(metrics: str, targets: tuple[str, ...]) -> bool:
    """Whether the server collector of every one of ``targets`` has failed at least once."""
    failed = {
        target
        for target in targets
        for line in metrics.splitlines()
        if line.startswith("pgradar_collector_errors_total{")
        and 'collector="server"' in line
        and f'target="{target}"' in line
        and float(line.rsplit(" ", 1)[1]) >= 1
    }
    return set(targets) <= failed


def test_passwords_never_appear_even_when_connections_fail(fresh_pg: Cluster, tmp_path: Path) -> None:
    wrong, unreachable = "Wr0ng-pass-8842", "Unre4chable-pass-1177"
    password_file = tmp_path / "password"
    password_file.write_text(MONITOR_PASSWORD + "\n")
    config = tmp_path / "pgradar.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "targets": [
                    {"name": "good", "dsn": fresh_pg.dsn(user=MONITOR_ROLE), "password_file": str(password_file)},
                    {"name": "wrong", "dsn": f"postgresql://{MONITOR_ROLE}:{wrong}@127.0.0.1:{fresh_pg.port}/postgres"},
                    {"name": "gone", "dsn": f"host=127.0.0.1 port=1 user=x password={unreachable}"},
                ],
                "intervals": {"server": 1},
            }
        )
    )
    proc, port = _agent(["--config", str(config)])
    outputs: dict[str, str] = {}
    try:
        wait_for(lambda: answers(port), 30, what="the agent")
        wait_for(lambda: 'pgradar_up{target="good"} 1.0' in scrape(port), 30, what="the good target up")
        # Each target's first run has its own phase within the interval (gone's is 0.9 s in): wait
        # until both failing targets have failed once, so that the log holds both errors.
        wait_for(lambda: _failed_once(scrape(port), ("wrong", "gone")), 30, what="both failing targets tried")
        outputs["/metrics"] = scrape(port)
        outputs["/problems"] = scrape(port, "/problems")
        checked = pgradar("check", "--config", str(config), "--format", "json", env={"PGRADAR_LOG_LEVEL": "DEBUG"})
        outputs["check"] = checked.stdout + checked.stderr
    finally:
        outputs["log"] = _stop(proc)
    assert "password authentication failed" in outputs["log"]
    assert "Connection refused" in outputs["log"]
    for where, text in outputs.items():
        for secret in (MONITOR_PASSWORD, wrong, unreachable):
            assert secret not in text, f"a password leaked into {where}"
