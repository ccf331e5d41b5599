-- load/sample: 14 adds query_id (filled while compute_query_id is on; 'auto'
-- turns it on with pg_stat_statements), the queryid of pg_stat_statements; a
-- parallel worker takes its leader's. Otherwise as in the 13 variant.
WITH a AS (
    SELECT a.pid, a.leader_pid, a.backend_type, a.datid, a.usesysid, a.application_name, a.state,
           a.wait_event_type, a.wait_event, a.query_id AS query_id
      FROM pg_stat_get_activity(NULL) a
     WHERE a.state IN ('active', 'fastpath function call', 'idle in transaction', 'idle in transaction (aborted)')
       AND a.backend_type IN ('client backend', 'parallel worker') AND a.pid <> pg_backend_pid()
), s AS (
    SELECT w.pid,
           coalesce(w.datid, l.datid) AS datid,
           nullif(coalesce(l.query_id, w.query_id), 0) AS queryid,
           coalesce(w.wait_event_type, 'CPU') AS wait_event_type,
           coalesce(w.wait_event, 'CPU') AS wait_event,
           coalesce(l.usesysid, w.usesysid) AS usesysid,
           coalesce(l.application_name, w.application_name, '') AS application,
           w.state IN ('active', 'fastpath function call') AS active,
           coalesce(w.state, '') AS state,
           CASE WHEN w.wait_event_type = 'Lock' THEN pg_blocking_pids(w.pid) END AS blocked_by
      FROM a w
      LEFT JOIN a l ON l.pid = w.leader_pid AND w.backend_type = 'parallel worker'
), load AS (
    SELECT * FROM s WHERE s.active AND s.application <> 'pgradar'
)
SELECT s.pid, coalesce(d.datname, '') AS database, s.queryid, s.wait_event_type, s.wait_event,
       coalesce(pg_get_userbyid(s.usesysid), '') AS username,
       s.application, s.active AND s.application <> 'pgradar' AS active, s.state, s.blocked_by::int[]
  FROM s
  LEFT JOIN pg_database d ON d.oid = s.datid
 WHERE s.pid IN (SELECT pid FROM load)
    OR s.pid IN (SELECT unnest(blocked_by) FROM load)
