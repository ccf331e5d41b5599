-- statements/stamps: 14 adds toplevel (see stamps.13.sql).
SELECT s.userid::int8 AS userid,
       s.dbid::int8 AS dbid,
       s.queryid,
       s.toplevel,
       s.calls,
       s.total_exec_time AS total_exec_ms,
       s.total_plan_time AS total_plan_ms
  FROM {pgss}.pg_stat_statements(false) s
 WHERE s.queryid IS NOT NULL
