-- vacuum/progress: every VACUUM running now (pg_stat_progress_vacuum), whether
-- autovacuum runs it, for how long, and how many autovacuum workers the server
-- allows: when all are busy, a table waits its turn. relid is the table's oid
-- in its database. Same on 13 to 18.
SELECT p.pid,
       coalesce(a.datname, '') AS database,
       p.relid::int8 AS relid,
       p.phase,
       coalesce(a.backend_type = 'autovacuum worker', false) AS autovacuum,
       extract(epoch FROM now() - a.xact_start)::float8 AS running_seconds,
       current_setting('autovacuum_max_workers')::int AS max_workers
  FROM pg_stat_progress_vacuum p
  LEFT JOIN pg_stat_activity a ON a.pid = p.pid
 ORDER BY p.pid
