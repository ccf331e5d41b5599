-- sizes/table_stamps: 14 counts partitioned tables among the tables, as
-- pg_stat_user_tables does from 14 on. The rest as in 13, which says what
-- the stamp holds and why.
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
 WHERE c.relkind IN ('r', 't', 'm', 'p')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
