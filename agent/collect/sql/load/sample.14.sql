-- load/sample: 14 adds query_id (filled while compute_query_id is on; 'auto'
-- turns it on with pg_stat_statements), the queryid of pg_stat_statements.
-- Otherwise as in the 13 variant, which says why the query has this shape.
SELECT a.pid, coalesce(d.datname, '') AS database, nullif(a.query_id, 0) AS queryid,
       coalesce(a.wait_event_type, 'CPU') AS wait_event_type, coalesce(a.wait_event, 'CPU') AS wait_event,
       coalesce(pg_get_userbyid(a.usesysid), '') AS username, coalesce(a.application_name, '') AS application,
       a.state IN ('active', 'fastpath function call') AND coalesce(a.application_name, '') <> 'pgradar' AS active,
       coalesce(a.state, '') AS state,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) END::int[] AS blocked_by
  FROM pg_stat_get_backend_idset() AS b(id)
 CROSS JOIN LATERAL pg_stat_get_activity(pg_stat_get_backend_pid(b.id)) AS a
  LEFT JOIN pg_database d ON d.oid = a.datid
 WHERE pg_stat_get_backend_xact_start(b.id) IS NOT NULL
   AND a.state IN ('active', 'fastpath function call', 'idle in transaction', 'idle in transaction (aborted)')
   AND a.backend_type IN ('client backend', 'parallel worker') AND a.pid <> pg_backend_pid()
