-- sizes/table_stamps: every user table of the current database with its live
-- column count and a "size stamp", read at every sizes poll without opening a
-- relation (pg_class and pgstat counters only). The size
-- (sizes/table_sizes, pg_table_size: the heap's forks, its TOAST table and
-- the TOAST index) is read again only for tables whose stamp is new; a full
-- read is sizes/tables.
-- The tables are pg_stat_user_tables' (13: relkind r, t, m in a schema not of
-- the system), read from pg_class and the pg_stat_get_* functions the view is
-- made of: the view joins every table to its indexes and groups the join for
-- index counters a stamp does not need, which was two thirds of the poll's
-- cost (bench/intervals.py: 32.6 ms a run on 1,000 tables before).
-- The stamp holds whatever moves when one of those files can change size:
--   relfilenode of the table, its TOAST table and TOAST index(es): TRUNCATE,
--     VACUUM FULL, CLUSTER, a rewriting ALTER TABLE, SET TABLESPACE give the
--     table (and its TOAST) new files; REINDEX TABLE gives the TOAST index one;
--   n_tup_ins, n_tup_upd, n_tup_del: every write that extends the heap, its
--     free-space and visibility maps or the TOAST (rolled-back writes are
--     counted too, and leave their pages behind);
--   vacuum_count, autovacuum_count of the table and of its TOAST table:
--     VACUUM truncates empty tail pages and creates or extends the FSM and VM
--     forks; autovacuum visits a TOAST table on its own;
--   relpages: set by VACUUM, ANALYZE and CREATE INDEX from the file's length,
--     so a change these missed is seen at the next of them.
-- The counters reach the statistics when the writing transaction ends and its
-- backend reports, once a second at most (15+: a backend that went idle sends
-- them within 10 s, and none keeps them past 60 s; 13-14: every 0.5 s at
-- most, and a backend that went idle within 0.5 s of its last report holds
-- them until its next transaction or its exit): a size can be a poll late.
-- A NULL stamp is never equal to one kept, so every size is read: on a
-- standby the counters do not move with the replayed writes, and with
-- track_counts off nothing counts.
-- The column count comes from pg_attribute at every poll: DROP COLUMN only
-- marks the attribute dropped and leaves the pg_class row (and its xmin) as
-- it was, so no stamp of pg_class would show it.
SELECT current_database()::text AS database,
       c.oid::int8 AS relid,
       (SELECT count(*) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int AS column_count,
       CASE WHEN current_setting('track_counts')::bool AND NOT pg_is_in_recovery() THEN
         concat_ws(' ', c.relfilenode, c.relpages, pg_stat_get_tuples_inserted(c.oid),
                   pg_stat_get_tuples_updated(c.oid), pg_stat_get_tuples_deleted(c.oid),
                   pg_stat_get_vacuum_count(c.oid), pg_stat_get_autovacuum_count(c.oid),
                   t.relfilenode, pg_stat_get_vacuum_count(t.oid), pg_stat_get_autovacuum_count(t.oid),
                   (SELECT string_agg(ti.relfilenode::text, ',' ORDER BY ti.relfilenode)
                      FROM pg_index x
                      JOIN pg_class ti ON ti.oid = x.indexrelid
                     WHERE x.indrelid = c.reltoastrelid))
       END AS stamp
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
 WHERE c.relkind IN ('r', 't', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
