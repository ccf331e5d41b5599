"""Partitioned tables, expression and partial indexes, quoted names: detected, and fixed by the SQL given.

Light: every version, in a schema of its own in the shared cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import MONITOR_ROLE, monitor_dsn, superuser

from pgradar.agent.classifiers import classify
from pgradar.agent.model import jobs
from pgradar.agent.model.findings import Finding
from pgradar.agent.model.thresholds import DEFAULT, with_overrides
from pgradar.agent.runtime.observation import observe
from pgradar.agent.runtime.runner import TargetRunner
from pgradar.agent.runtime.state import TargetState
from pgradar.agent.settings.config import Config, TargetConfig
from pgradar.commands.embedded import Cluster

SCHEMA = """
DROP SCHEMA IF EXISTS "Part Test" CASCADE;
CREATE SCHEMA "Part Test";
GRANT USAGE ON SCHEMA "Part Test" TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA "Part Test" GRANT SELECT ON TABLES TO {role};
CREATE TABLE "Part Test".accounts (id int PRIMARY KEY, "E-Mail" text);
INSERT INTO "Part Test".accounts SELECT g, 'u' || g || '@x.org' FROM generate_series(1, 2000) g;
CREATE TABLE "Part Test"."Events" (id int, account_id int REFERENCES "Part Test".accounts, kind int, at date)
  PARTITION BY RANGE (at);
CREATE TABLE "Part Test"."Events 2026a" PARTITION OF "Part Test"."Events"
  FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE "Part Test"."Events 2026b" PARTITION OF "Part Test"."Events"
  FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
INSERT INTO "Part Test"."Events" SELECT g, g % 2000 + 1, g % 1000, date '2026-01-01' + g % 360
  FROM generate_series(1, 40000) g;
CREATE INDEX events_kind_at ON "Part Test"."Events" (kind, at);
CREATE INDEX events_kind ON "Part Test"."Events" (kind);
CREATE INDEX "Mail lower" ON "Part Test".accounts (lower("E-Mail"));
CREATE INDEX "Mail lower 2" ON "Part Test".accounts (lower("E-Mail"));
CREATE INDEX mail_partial ON "Part Test".accounts (lower("E-Mail")) WHERE id > 1000;
ANALYZE "Part Test"."Events", "Part Test".accounts;
"""


@pytest.fixture
def planted(pg: Cluster) -> Iterator[Cluster]:
    with superuser(pg, "app") as conn:
        conn.execute(SCHEMA.format(role=MONITOR_ROLE))
        for i in range(120):
            conn.execute('SELECT count(*) FROM "Part Test"."Events" WHERE account_id = %s', (i,))
            conn.execute('SELECT kind FROM "Part Test"."Events 2026b" WHERE id = %s', (i,))  # one partition
    yield pg
    with superuser(pg, "app") as conn:
        conn.execute('DROP SCHEMA "Part Test" CASCADE')


def findings(rt: TargetRunner) -> list[Finding]:
    for name in jobs.COLLECTOR_NAMES:
        rt.run_collector(name)
    found, errors = classify(observe(rt.state, rt.state.current().tables.taken_at), rt.target.thresholds)
    assert not errors
    return [f for f in found if f.schema == "Part Test"]


def run_fix(cluster: Cluster, recommendation: str) -> None:
    with superuser(cluster, "app") as conn:
        for line in recommendation.splitlines():
            if line.strip() and not line.lstrip().startswith("--"):
                conn.execute(line)


def test_partitions_expressions_and_quoting(planted: Cluster) -> None:
    small = with_overrides(DEFAULT, {"unused_index_min_bytes": 0})  # the test's indexes are under 1 MiB
    config = Config(targets=(TargetConfig("t", monitor_dsn(planted), thresholds=small),))
    rt = TargetRunner(config.targets[0], config, TargetState("t"))
    try:
        found = {(f.kind, f.relation, f.index): f for f in findings(rt)}
        # one partitioned index, judged over its partitions: dropped without CONCURRENTLY
        assert not [
            f for f in found.values() if f.relation and f.relation.startswith("Events 2026") and f.kind != "seq_scan"
        ]
        dup = found[("duplicate_index", "Events", "events_kind")]
        assert dup.evidence["duplicate_of"] == "events_kind_at"
        assert dup.recommendation.startswith('DROP INDEX "Part Test".events_kind;')
        unused = found[("unused_index", "Events", "events_kind")]
        assert unused.recommendation.startswith('DROP INDEX "Part Test".events_kind;')
        assert unused.evidence["partitions"] == 2
        # identical expression indexes: the newer one goes; the partial one is not a duplicate
        mail = [f for f in found.values() if f.kind == "duplicate_index" and f.relation == "accounts"]
        assert [(f.index, f.evidence["duplicate_of"]) for f in mail] == [("Mail lower 2", "Mail lower")]
        assert mail[0].recommendation.startswith('DROP INDEX CONCURRENTLY "Part Test"."Mail lower 2";')
        # the foreign key on the partitioned table, and the statement that scans it
        # one cause, one fix: the foreign key's index is the statement's, recommended once (DESIGN 3.2)
        fk = found[("missing_fk_index", "Events", None)]
        seq = next(f for f in found.values() if f.kind == "seq_scan" and f.relation == "Events")
        # a partitioned table's index: ON ONLY, CONCURRENTLY on each partition, ATTACH (a runnable script)
        assert seq.recommendation.startswith(
            'CREATE INDEX "Events_account_id_idx" ON ONLY "Part Test"."Events" (account_id);\n'
            'CREATE INDEX CONCURRENTLY "Events 2026a_account_id_idx" ON "Part Test"."Events 2026a" (account_id);\n'
            'ALTER INDEX "Part Test"."Events_account_id_idx" ATTACH PARTITION '
            '"Part Test"."Events 2026a_account_id_idx";'
        ), seq.recommendation
        # a statement that names a partition: the index on that partition, built CONCURRENTLY
        part = next(f for f in found.values() if f.kind == "seq_scan" and f.relation == "Events 2026b")
        assert part.recommendation.startswith(
            'CREATE INDEX CONCURRENTLY "Events 2026b_id_idx" ON "Part Test"."Events 2026b" (id);'
        ), part.recommendation
        assert fk.recommendation.startswith("-- (account_id) is served by the index recommended for seq_scan")
        assert fk.evidence["served_by"][0]["queryid"] == seq.queryid

        for f in (unused, mail[0], seq, part):
            run_fix(planted, f.recommendation)
        with superuser(planted, "app") as conn:
            valid = conn.execute(
                'SELECT indisvalid FROM pg_index WHERE indexrelid = \'"Part Test"."Events_account_id_idx"\'::regclass'
            ).fetchone()
        assert valid == (True,)  # every partition's index attached: the parent's is valid
        again = findings(rt)
        after = {(f.kind, f.relation, f.index) for f in again}
        assert not after & {
            ("unused_index", "Events", "events_kind"),
            ("duplicate_index", "accounts", "Mail lower 2"),
            ("missing_fk_index", "Events", None),
        }
        assert not any(kind == "seq_scan" and rel == "Events" for kind, rel, _ in after)
        # no statement's plan scans them any more (the table counters keep the scans that were)
        left = [
            (f.kind, f.relation)
            for f in again
            if f.kind == "duplicate_index" or (f.kind, f.queryid) == ("seq_scan", part.queryid)
        ]
        assert left == [], left
    finally:
        rt.close()
