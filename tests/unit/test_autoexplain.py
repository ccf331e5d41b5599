"""Reading auto_explain plans from a server log, and statement-text helpers (no server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from factories import T0

from pgradar.agent.model.plans import literal_free
from pgradar.agent.plans.autoexplain import LogTail, sample_from


def plan_json(queryid: int | None, estimated: int, actual: int, relation: str = "items") -> dict:
    doc = {
        "Query Text": f"SELECT count(*) FROM {relation} WHERE s = $1",
        "Plan": {
            "Node Type": "Aggregate",
            "Plan Rows": 1,
            "Actual Rows": 1,
            "Actual Loops": 1,
            "Plans": [
                {
                    "Node Type": "Seq Scan",
                    "Relation Name": relation,
                    "Schema": "public",
                    "Plan Rows": estimated,
                    "Actual Rows": actual,
                    "Actual Loops": 1,
                    "Filter": "(s = 'b'::text)",
                }
            ],
        },
    }
    if queryid is not None:
        doc["Query Identifier"] = queryid
    return doc


def stderr_entry(doc: dict, pid: int = 42) -> str:
    """As the server writes it to stderr: the JSON on continuation lines that start with a tab."""
    body = json.dumps(doc, indent=2).splitlines()
    return f"2026-11-22 03:00:00.000 UTC [{pid}] LOG:  duration: 1.500 ms  plan:\n" + "".join(
        f"\t{line}\n" for line in body
    )


def test_sample_from_a_message() -> None:
    sample = sample_from("duration: 3.250 ms  plan:\n" + json.dumps(plan_json(7, 1, 5000)), "app", T0)
    assert sample is not None and sample.queryid == 7 and sample.database == "app" and sample.duration_ms == 3.25
    scan = next(n for n in sample.nodes if n.node_type == "Seq Scan")
    assert (scan.schema, scan.relation, scan.plan_rows, scan.actual_rows, scan.factor) == (
        "public",
        "items",
        1,
        5000,
        5000,
    )
    aggregate = next(n for n in sample.nodes if n.node_type == "Aggregate")
    assert aggregate.relation == "items"  # the first relation below it
    assert sample_from("duration: 1 ms  statement: SELECT 1", None, T0) is None
    assert sample_from("duration: 1 ms  plan:\n{broken", None, T0) is None


def test_stderr_log_read_incrementally_with_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("2026-11-22 03:00:00.000 UTC [1] LOG:  database system is ready\n")
    tail = LogTail(str(log))
    assert tail.read(T0) > 0 and tail.plans == ()
    entry = stderr_entry(plan_json(7, 1, 5000))
    cut = len(entry) // 2
    with log.open("a") as f:
        f.write(entry[:cut])
    tail.read(T0)
    assert tail.plans == ()  # half a message waits
    with log.open("a") as f:
        f.write(entry[cut:] + "2026-11-22 03:00:01.000 UTC [1] LOG:  checkpoint starting: time\n")
    tail.read(T0)
    assert [p.queryid for p in tail.plans] == [7]
    with log.open("a") as f:  # the same statement again: its latest plan replaces the first
        f.write(stderr_entry(plan_json(7, 5000, 5000)))
    tail.read(T0)
    assert len(tail.plans) == 1 and tail.plans[0].nodes[0].factor == 1


def test_jsonlog_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.json"
    log.write_text("")
    tail = LogTail(str(log))
    tail.read(T0)
    message = "duration: 2.000 ms  plan:\n" + json.dumps(plan_json(9, 1, 5000))
    log.write_text(json.dumps({"timestamp": "x", "dbname": "app", "message": message}) + "\n")
    tail.read(T0)
    assert [(p.queryid, p.database) for p in tail.plans] == [(9, "app")]
    rotated = tmp_path / "postgresql.json.1"
    os.rename(log, rotated)
    message = "duration: 2.000 ms  plan:\n" + json.dumps(plan_json(10, 1, 5000))
    log.write_text(json.dumps({"dbname": "app", "message": message}) + "\n")
    tail.read(T0)
    assert {p.queryid for p in tail.plans} == {9, 10}


def test_memory_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("")
    tail = LogTail(str(log), max_plans=3, max_message_bytes=2000)
    big = plan_json(1, 1, 5000)
    big["Query Text"] = "SELECT " + "x" * 5000
    log.write_text("".join(stderr_entry(plan_json(q, 1, 5000)) for q in range(2, 8)) + stderr_entry(big))
    tail.read(T0)
    assert [p.queryid for p in tail.plans] == [5, 6, 7]  # the oldest evicted, the oversize one dropped


def test_first_read_starts_near_the_end(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(stderr_entry(plan_json(1, 1, 5000)) + "x" * 5000 + "\n" + stderr_entry(plan_json(2, 1, 5000)))
    tail = LogTail(str(log), backlog_bytes=len(stderr_entry(plan_json(2, 1, 5000))) + 100)
    tail.read(T0)
    assert [p.queryid for p in tail.plans] == [2]


def test_literal_free_matches_logged_and_normalized_texts() -> None:
    assert literal_free("SELECT * FROM t WHERE a = 'it''s' AND b = 42;") == literal_free(
        "select *  from t where a = $1 and b = $2"
    )
