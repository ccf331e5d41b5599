-- sessions/sessions: 14 adds pg_stat_activity.query_id, filled while
-- compute_query_id is on ('auto' turns it on when pg_stat_statements is
-- loaded); it matches pg_stat_statements.queryid, whose normalized text
-- names the statement. Otherwise as in the 13 variant.
WITH s AS (
    SELECT a.*, pg_blocking_pids(a.pid) AS blocked_by
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
), blockers AS (
    SELECT DISTINCT unnest(blocked_by) AS pid FROM s
)
SELECT s.pid,
       coalesce(s.datid, 0)::int8 AS dbid,
       coalesce(s.datname, '') AS database,
       coalesce(s.usename, '') AS username,
       coalesce(s.application_name, '') AS application,
       coalesce(host(s.client_addr), '') AS client_addr,
       coalesce(s.state, '') AS state,
       coalesce(s.wait_event_type, '') AS wait_event_type,
       coalesce(s.wait_event, '') AS wait_event,
       extract(epoch FROM now() - s.xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - s.query_start)::float8 AS query_seconds,
       extract(epoch FROM now() - s.state_change)::float8 AS state_seconds,
       nullif(s.query_id, 0) AS queryid,
       s.blocked_by::int[] AS blocked_by,
       CASE WHEN cardinality(s.blocked_by) > 0 THEN
           (SELECT l.relation::int8
              FROM pg_locks l
             WHERE l.pid = s.pid AND l.relation IS NOT NULL AND l.database = s.datid
             ORDER BY l.granted, l.locktype <> 'tuple'
             LIMIT 1)
       END AS lock_relid
  FROM s
 WHERE s.xact_start IS NOT NULL OR s.state = 'active' OR cardinality(s.blocked_by) > 0
    OR s.pid IN (SELECT pid FROM blockers)
 ORDER BY cardinality(s.blocked_by) > 0 DESC, s.pid IN (SELECT pid FROM blockers) DESC,
          least(s.xact_start, s.query_start) NULLS LAST
 LIMIT 200
