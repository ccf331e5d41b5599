"""statement_timeout: cancellations read from the server log, judged without a server."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from factories import T0, delta, interval, observation

from pgradar.agent.classifiers.timeouts import fingerprint, statement_timeout
from pgradar.agent.model.plans import AutoExplainSnapshot, TimeoutCancel
from pgradar.agent.model.thresholds import DEFAULT as T
from pgradar.agent.plans.autoexplain import LogTail

STDERR = """\
2026-12-01 22:00:00.100 UTC [4242] user=shop,db=app,app=checkout ERROR:  canceling statement due to statement timeout
2026-12-01 22:00:00.100 UTC [4242] user=shop,db=app,app=checkout STATEMENT:  SELECT * FROM orders
\tWHERE note LIKE '%gift%' AND total > 100
2026-12-01 22:00:01.000 UTC [4250] LOG:  checkpoint starting: time
2026-12-01 22:00:02.000 UTC [4251] ERROR:  canceling statement due to user request
2026-12-01 22:00:02.000 UTC [4251] STATEMENT:  SELECT pg_sleep(10)
"""


def test_cancellations_from_stderr_and_jsonlog(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text(STDERR)
    tail = LogTail(str(log))
    tail.read(T0)
    (cancel,) = tail.timeouts  # a cancel by the user (57014 too) is not a timeout
    assert (cancel.database, cancel.user, cancel.application) == ("app", "shop", "checkout")
    assert cancel.statement == "SELECT * FROM orders WHERE note LIKE ? AND total > ?"  # literals blanked
    entry = {
        "timestamp": "2026-12-01 22:00:00.100 UTC",
        "user": "shop",
        "dbname": "app",
        "application_name": "batch",
        "error_severity": "ERROR",
        "state_code": "57014",
        "message": "canceling statement due to statement timeout",
        "statement": "UPDATE stock SET n = n - 1 WHERE sku = 'A-1'",
    }
    jsonlog = tmp_path / "postgresql.json"
    jsonlog.write_text(json.dumps(entry) + "\n")
    tail = LogTail(str(jsonlog))
    tail.read(T0)
    assert [(c.application, c.statement) for c in tail.timeouts] == [
        ("batch", "UPDATE stock SET n = n - ? WHERE sku = ?")
    ]


def _cancel(statement: str, seconds_ago: float = 0, database: str | None = "app") -> TimeoutCancel:
    return TimeoutCancel(database, "shop", "checkout", T0 - timedelta(seconds=seconds_ago), statement)


def test_one_finding_per_statement_with_its_queryid_or_its_fingerprint() -> None:
    cancels = (
        *(_cancel("SELECT * FROM orders WHERE total > ?") for _ in range(10)),
        _cancel("SELECT count(*) FROM events WHERE kind = ?"),
        _cancel("SELECT 1 FROM old WHERE id = ?", seconds_ago=T.statement_timeout_window_s + 1),  # before the window
    )
    log = AutoExplainSnapshot(T0, "/var/log/postgresql.log", (), timeouts=cancels)
    obs = observation(
        interval(delta(7, calls=3)), texts={(5, 7): "SELECT * FROM orders WHERE total > $1"}, auto_explain=log
    )
    found = {f.queryid: f for f in statement_timeout(obs, T)}
    assert set(found) == {"7", fingerprint("SELECT count(*) FROM events WHERE kind = ?")}
    orders = found["7"]
    assert (orders.database, orders.severity, orders.evidence["cancelled"]) == ("app", "critical", 10)
    assert orders.evidence["roles"] == ["shop"] and orders.evidence["applications"] == ["checkout"]
    assert found[fingerprint("SELECT count(*) FROM events WHERE kind = ?")].severity == "warning"
    assert fingerprint("select count(*) from events where kind = $1").startswith("text:")
    # no log read: nothing, and check lists the kind as not seen (exporters.report)
    assert list(statement_timeout(observation(auto_explain=AutoExplainSnapshot(T0, None, ())), T)) == []
