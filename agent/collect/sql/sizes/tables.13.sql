-- sizes/tables: on-disk size of every user table in the current database
-- (with its TOAST, without its indexes: the indexes query measures each of
-- those), and its live column count (select_star: is the table wide?). Same
-- on 13 to 18. Apart from the counters (tables/tables) because each size is a
-- file-system call per fork, and neither changes quickly: the sizes collector
-- runs every few minutes.
SELECT current_database()::text AS database,
       s.relid::int8 AS relid,
       pg_table_size(s.relid) AS size_bytes,
       (SELECT count(*) FROM pg_attribute a
         WHERE a.attrelid = s.relid AND a.attnum > 0 AND NOT a.attisdropped)::int AS column_count
  FROM pg_stat_user_tables s
