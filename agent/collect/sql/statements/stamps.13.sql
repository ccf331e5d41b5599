-- statements/stamps: each entry's key and what changes when it runs or is
-- planned: calls, execution and planning time. A poll compares them with the
-- rows it holds and reads the full rows (statements/pgss) only for the
-- queryids whose stamp changed: most of pg_stat_statements is idle between two
-- polls, and its full rows (5,000 of 20 columns) were most of what a
-- statements poll cost the server and the agent. An entry evicted and created
-- again starts its counters from zero, so its stamp differs too.
-- 13: no toplevel column yet (see pgss.13.sql).
SELECT s.userid::int8 AS userid,
       s.dbid::int8 AS dbid,
       s.queryid,
       true AS toplevel,
       s.calls,
       s.total_exec_time AS total_exec_ms,
       s.total_plan_time AS total_plan_ms
  FROM {pgss}.pg_stat_statements(false) s
 WHERE s.queryid IS NOT NULL
