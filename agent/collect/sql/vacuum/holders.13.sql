-- vacuum/holders: whatever holds the xmin horizon back, one row per holder:
-- a session with a snapshot or a transaction id (pg_stat_activity
-- backend_xmin, backend_xid), a prepared transaction (pg_prepared_xacts), a
-- replication slot's xmin or catalog_xmin (pg_replication_slots) and a
-- standby's hot_standby_feedback (pg_stat_replication.backend_xmin). xmin is
-- the oldest transaction id the holder keeps (as a number: xid has no order
-- in SQL); xmin_age is age() of it. held_seconds is how long the server
-- says it has held it, where it can say: a session's transaction start, a
-- prepared transaction's PREPARE. 13 has no query_id in pg_stat_activity and
-- no inactive_since on slots. Walsenders are their standbys; autovacuum and
-- parallel workers hold nothing of their own; pgradar's own session is left out.
SELECT 'backend' AS holder,
       a.pid::text AS name,
       a.pid,
       coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       coalesce(a.application_name, '') AS application,
       coalesce(a.state, '') AS state,
       NULL::int8 AS queryid,
       CASE WHEN a.backend_xid IS NOT NULL AND (a.backend_xmin IS NULL OR age(a.backend_xid) > age(a.backend_xmin))
            THEN a.backend_xid ELSE a.backend_xmin END::text::int8 AS xmin,
       greatest(age(a.backend_xmin), age(a.backend_xid))::int8 AS xmin_age,
       extract(epoch FROM now() - a.xact_start)::float8 AS held_seconds,
       false AS catalog_only,
       NULL::bool AS active
  FROM pg_stat_activity a
 WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
   AND a.pid <> pg_backend_pid()
   AND coalesce(a.backend_type, '') NOT IN ('walsender', 'autovacuum worker', 'parallel worker')
UNION ALL
SELECT 'prepared', p.gid, NULL, p.database, p.owner, '', '', NULL,
       p.transaction::text::int8, age(p.transaction)::int8,
       extract(epoch FROM now() - p.prepared)::float8, false, NULL
  FROM pg_prepared_xacts p
UNION ALL
SELECT 'slot', s.slot_name, s.active_pid, coalesce(s.database, ''), '', s.slot_type, '', NULL,
       coalesce(s.xmin, s.catalog_xmin)::text::int8,
       greatest(age(s.xmin), age(s.catalog_xmin))::int8,
       NULL, s.xmin IS NULL, s.active
  FROM pg_replication_slots s
 WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
UNION ALL
SELECT 'standby', coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text), r.pid, '', r.usename,
       r.application_name, coalesce(r.state, ''), NULL,
       r.backend_xmin::text::int8, age(r.backend_xmin)::int8, NULL, false, NULL
  FROM pg_stat_replication r
 WHERE r.backend_xmin IS NOT NULL
 ORDER BY xmin_age DESC, 1, 2
