"""statement_timeout on real servers (13 and 18): cancelled statements found in the server log by `check`.

pg_stat_statements never records a statement cancelled by statement_timeout;
the server log does (``canceling statement due to statement timeout`` and its
``STATEMENT:`` line). A role with a 100 ms timeout runs a statement that
takes longer, five times; it finished once before under a longer timeout,
so its text maps to a queryid. `check` with the log named reports one
statement_timeout finding with the count, role, application and timeout;
without the log, `check` lists the kind as not seen.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from support import MONITOR_ROLE, monitor_dsn, pgradar, superuser, wait_for

from pgradar.commands.embedded import Cluster

SLOW = "SELECT count(*) FROM generate_series(1, %s) g WHERE g %% 7 = 3"


@pytest.mark.heavy
def test_cancelled_statements_are_found_in_the_log_and_not_seen_without_it(fresh_pg: Cluster, tmp_path: Path) -> None:
    with superuser(fresh_pg) as conn:
        conn.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] user=%u,db=%d,app=%a '")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CREATE ROLE shop LOGIN PASSWORD 'shop-pw'")
        conn.execute("ALTER ROLE shop SET statement_timeout = '100ms'")
        conn.execute(f"GRANT pg_read_all_settings TO {MONITOR_ROLE}")
    dsn = fresh_pg.dsn("app", user="shop", password="shop-pw")
    with psycopg.connect(dsn + " application_name=checkout", autocommit=True) as conn:
        conn.execute("SET statement_timeout = '60s'")
        conn.execute(SLOW, (1000,))  # finished once: its text has a queryid
        conn.execute("RESET statement_timeout")
        for _ in range(5):
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(SLOW, (100_000_000,))
    log = str(fresh_pg.logfile)
    wait_for(  # the server's logger writes behind the backends
        lambda: Path(log).read_text(errors="replace").count("canceling statement due to statement timeout") == 5,
        10,
        what="the five cancellations in the server log",
    )

    config = tmp_path / "pgradar.yaml"
    config.write_text(f"targets:\n  - name: main\n    dsn: '{monitor_dsn(fresh_pg)}'\n    auto_explain_log: '{log}'\n")
    result = pgradar("check", "--config", str(config), "--format", "json", "--fail-on", "never")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (found,) = [p for p in doc["problems"] if p["kind"] == "statement_timeout"]
    assert found["database"] == "app" and found["queryid"] and found["queryid"].lstrip("-").isdigit(), found
    evidence = found["evidence"]
    assert evidence["cancelled"] == 5 and evidence["roles"] == ["shop"], evidence
    assert evidence["applications"] == ["checkout"], evidence
    assert evidence["query"] == "SELECT count(*) FROM generate_series(?, ?) g WHERE g % ? = ?", evidence
    assert "not_seen" not in doc["targets"][0]

    plain = pgradar("check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--format", "json", "--fail-on", "never")
    doc = json.loads(plain.stdout)
    assert [d["kind"] for d in doc["targets"][0]["not_seen"]] == ["statement_timeout"]
    assert not [p for p in doc["problems"] if p["kind"] == "statement_timeout"]
    table = pgradar("check", "--dsn", f"main={monitor_dsn(fresh_pg)}", "--fail-on", "never")
    assert "kind statement_timeout is not seen" in table.stdout, table.stdout
