-- tables/tables: 16 adds last_seq_scan, the time of the last sequential
-- scan (the last index scan is on the indexes query). The rest as in 14.
SELECT current_database()::text AS database,
       c.oid::int8 AS relid,
       n.nspname AS schema,
       c.relname AS relation,
       c.relkind::text AS relkind,
       c.reltuples::float8 AS reltuples,
       -- sizes come from sizes/tables.13.sql on a slower cadence: the file-size
       -- calls cost more than all the counters together
       NULL::int8 AS size_bytes,
       pg_stat_get_numscans(c.oid) AS seq_scan,
       pg_stat_get_tuples_returned(c.oid) AS seq_tup_read,
       coalesce(ix.idx_scan, 0) AS idx_scan,
       coalesce(ix.idx_tup_fetch + pg_stat_get_tuples_fetched(c.oid), 0) AS idx_tup_fetch,
       pg_stat_get_tuples_inserted(c.oid) AS n_tup_ins,
       pg_stat_get_tuples_updated(c.oid) AS n_tup_upd,
       pg_stat_get_tuples_deleted(c.oid) AS n_tup_del,
       pg_stat_get_tuples_hot_updated(c.oid) AS n_tup_hot_upd,
       pg_stat_get_live_tuples(c.oid) AS n_live_tup,
       pg_stat_get_dead_tuples(c.oid) AS n_dead_tup,
       pg_stat_get_mod_since_analyze(c.oid) AS n_mod_since_analyze,
       pg_stat_get_ins_since_vacuum(c.oid) AS n_ins_since_vacuum,
       pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
       pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
       pg_stat_get_last_analyze_time(c.oid) AS last_analyze,
       pg_stat_get_last_autoanalyze_time(c.oid) AS last_autoanalyze,
       pg_stat_get_vacuum_count(c.oid) + pg_stat_get_autovacuum_count(c.oid) AS vacuum_count,
       pg_stat_get_analyze_count(c.oid) + pg_stat_get_autoanalyze_count(c.oid) AS analyze_count,
       pg_stat_get_lastscan(c.oid) AS last_seq_scan,
       CASE WHEN c.relfrozenxid <> '0'::xid THEN c.relfrozenxid::text::int8 END AS relfrozenxid,
       coalesce(c.reloptions, '{}') AS reloptions,
       -- the transaction id age() counts from: age(x) is (next - x) in 32-bit
       -- arithmetic, and 3 is the first normal xid. The agent computes
       -- age(relfrozenxid) from it (TablesSnapshot.xid_age) so that an idle
       -- table's row stays equal from one poll to the next while every
       -- transaction in the cluster moves the age; the last column, left out
       -- of that comparison
       mod(3 + age('3'::xid)::int8 + 4294967296, 4294967296) AS next_xid
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  -- the scans and fetches of the table's indexes, added up as the view does
  -- (NULL for a table without indexes, where the view's sums are NULL too)
  LEFT JOIN LATERAL (SELECT sum(pg_stat_get_numscans(i.indexrelid))::int8 AS idx_scan,
                            sum(pg_stat_get_tuples_fetched(i.indexrelid))::int8 AS idx_tup_fetch
                       FROM pg_index i WHERE i.indrelid = c.oid) ix ON true
 WHERE c.relkind IN ('r', 't', 'm', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
