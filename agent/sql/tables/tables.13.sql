-- tables/tables: per-table activity and maintenance (sizes: sizes/tables), in the current
-- database (sizes and column counts: sizes/tables, every few minutes). Same
-- columns on 13 to 15; 16 adds last_seq_scan (tables.16.sql).
SELECT current_database()::text AS database,
       s.relid::int8 AS relid,
       s.schemaname AS schema,
       s.relname AS relation,
       c.relkind::text AS relkind,
       c.reltuples::float8 AS reltuples,
       -- sizes come from sizes/tables.13.sql on a slower cadence: the file-size
       -- calls cost more than all the counters together
       NULL::int8 AS size_bytes,
       s.seq_scan,
       s.seq_tup_read,
       coalesce(s.idx_scan, 0) AS idx_scan,
       coalesce(s.idx_tup_fetch, 0) AS idx_tup_fetch,
       s.n_tup_ins,
       s.n_tup_upd,
       s.n_tup_del,
       s.n_tup_hot_upd,
       s.n_live_tup,
       s.n_dead_tup,
       s.n_mod_since_analyze,
       s.n_ins_since_vacuum,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze,
       s.vacuum_count + s.autovacuum_count AS vacuum_count,
       s.analyze_count + s.autoanalyze_count AS analyze_count,
       NULL::timestamptz AS last_seq_scan,
       CASE WHEN c.relfrozenxid <> '0'::xid THEN c.relfrozenxid::text::int8 END AS relfrozenxid,
       coalesce(c.reloptions, '{}') AS reloptions,
       -- the transaction id age() counts from: age(x) is (next - x) in 32-bit
       -- arithmetic, and 3 is the first normal xid. The agent computes
       -- age(relfrozenxid) from it (TablesSnapshot.xid_age) so that an idle
       -- table's row stays equal from one poll to the next while every
       -- transaction in the cluster moves the age; the last column, left out
       -- of that comparison
       mod(3 + age('3'::xid)::int8 + 4294967296, 4294967296) AS next_xid
  FROM pg_stat_user_tables s
  JOIN pg_class c ON c.oid = s.relid
