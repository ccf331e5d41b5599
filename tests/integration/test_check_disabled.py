"""``check`` says what it could not see: a collector switched off is in every output form.

A real server without pg_stat_statements in shared_preload_libraries: the statements collector
is off, and ``check`` names it, why and the fix (JSON ``targets[i].disabled``, a line in the
table and markdown forms), the way ``run`` logs it. Before, ``check`` said nothing and a user
read "0 problems" as "no statement problems".
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support import HEAVY, MONITOR_ROLE, installation, monitor_dsn, pgradar, superuser

from pgradar.commands.embedded import Cluster, Installation, Sandbox


@pytest.fixture(scope="module")
def no_pgss(installations: dict[int, Installation], sandbox: Sandbox) -> Iterator[Cluster]:
    cluster = sandbox.cluster(
        installation(installations, max(HEAVY)), "no-pgss", settings={"shared_preload_libraries": "''"}
    )
    with superuser(cluster) as conn:
        conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD 'mon-S3cret-pw' IN ROLE pg_monitor")
    yield cluster
    cluster.stop("immediate")
    sandbox.clusters.remove(cluster)


def test_check_lists_the_collector_it_could_not_run(no_pgss: Cluster) -> None:
    dsn = f"main={monitor_dsn(no_pgss)}"
    proc = pgradar("check", "--dsn", dsn, "--format", "json", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    assert target["ok"] is True
    off = {d["collector"]: d for d in target["disabled"]}
    assert set(off) == {"statements"}, target["disabled"]
    assert off["statements"]["reason"] == "pg_stat_statements is not in shared_preload_libraries"
    assert "CREATE EXTENSION pg_stat_statements" in off["statements"]["fix"]
    assert "shared_preload_libraries" in off["statements"]["fix"]

    table = pgradar("check", "--dsn", dsn, "--fail-on", "never")
    assert table.returncode == 0, table.stderr
    line = next(x for x in table.stdout.splitlines() if "collector statements is off" in x)
    assert "not in shared_preload_libraries" in line
    markdown = pgradar("check", "--dsn", dsn, "--format", "markdown", "--fail-on", "never")
    assert "collector statements is off: pg_stat_statements is not in shared_preload_libraries" in markdown.stdout


def test_a_server_with_everything_lists_nothing(pg: Cluster) -> None:
    proc = pgradar("check", "--dsn", f"main={monitor_dsn(pg)}", "--format", "json", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    (target,) = json.loads(proc.stdout)["targets"]
    assert target["disabled"] == []
