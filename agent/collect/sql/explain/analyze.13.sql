-- explain/analyze: EXPLAIN ANALYZE, which runs the statement: only on a
-- standby, only where the target turns it on, only parameterless plain reads,
-- inside a read-only transaction that is rolled back (agent.plans.analyze).
-- TIMING OFF: actual rows are what is read; per-node timing would slow it.
EXPLAIN (ANALYZE, VERBOSE, TIMING OFF, FORMAT JSON) {statement}
