-- vacuum/holders: 15 adds pg_ls_replslotdir (granted to pg_monitor): an
-- inactive slot's state file is written when the slot last moved (at the
-- checkpoint after), so the time since it was modified is how long, at least,
-- the slot has held its xmin. Temporary slots keep no file and are left
-- without a time. Otherwise as in the 14 variant (sessions with query_id,
-- prepared transactions, slots, standbys' feedback).
SELECT 'backend' AS holder,
       a.pid::text AS name,
       a.pid,
       coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       coalesce(a.application_name, '') AS application,
       coalesce(a.state, '') AS state,
       nullif(a.query_id, 0) AS queryid,
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
       CASE WHEN NOT s.active AND NOT s.temporary THEN
           (SELECT extract(epoch FROM now() - max(f.modification))::float8
              FROM pg_ls_replslotdir(s.slot_name) f WHERE f.name = 'state')
       END,
       s.xmin IS NULL, s.active
  FROM pg_replication_slots s
 WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
UNION ALL
SELECT 'standby', coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text), r.pid, '', r.usename,
       r.application_name, coalesce(r.state, ''), NULL,
       r.backend_xmin::text::int8, age(r.backend_xmin)::int8, NULL, false, NULL
  FROM pg_stat_replication r
 WHERE r.backend_xmin IS NOT NULL
 ORDER BY xmin_age DESC, 1, 2
