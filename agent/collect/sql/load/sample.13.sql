-- load/sample: one sample of database load. Every active client backend and
-- parallel worker with its wait; an active backend with no wait event is on
-- CPU. pgradar's own sessions (application_name pgradar) are not load. Backends
-- in a transaction but idle are listed too (active false: not load), for they
-- may hold the locks an active Lock waiter waits for (blocked_by).
--
-- What it costs the server is the point of its shape (bench/load.py: about
-- 1.7 ms a sample with 500 connections, 100 active, before it): it reads
-- pg_stat_get_activity only for backends in a transaction. pg_stat_get_backend_idset
-- and pg_stat_get_backend_xact_start are cheap per backend, where
-- pg_stat_get_activity builds some 30 columns for every backend and looks up
-- each one's PGPROC (a walk of the process array) for its wait event: an idle
-- session cost as much as an active one, and most sessions of a pooled
-- server are idle. A statement runs inside a transaction, so an active
-- backend has a transaction start (but for the instants between its
-- transactions). A parallel worker carries its leader's database, user,
-- application_name and query_id (seen on 13, 14 and 18), so it needs no join
-- to its leader. 13 has no query_id: the waits are counted without a
-- statement.
SELECT a.pid, coalesce(d.datname, '') AS database, NULL::int8 AS queryid,
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
