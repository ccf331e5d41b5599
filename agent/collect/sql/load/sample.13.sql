-- load/sample: one sample of database load. Every active client backend and
-- parallel worker (a worker counts for its leader: the leader's database,
-- user, application and statement), with its wait; an active backend with no
-- wait event is on CPU. pgradar's own sessions (application_name pgradar) are
-- left out. Backends that block an active Lock waiter are listed too (active
-- false: not load, the evidence of who holds the lock). It reads
-- pg_stat_get_activity, not the pg_stat_activity view: the view also joins
-- the roles and builds every column (the query text among them) for every
-- backend, which cost about half of a sample's server time with 500
-- connections (bench/load.py). 13 has no query_id: the waits are counted
-- without a statement.
WITH a AS (
    SELECT a.pid, a.leader_pid, a.backend_type, a.datid, a.usesysid, a.application_name, a.state,
           a.wait_event_type, a.wait_event, NULL::int8 AS query_id
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
