-- sizes/tables: on-disk size of every user table in the current database,
-- with and without its indexes. Same on 13 to 18. Apart from the counters
-- (tables/tables) because each size is a file-system call per relation, and
-- sizes change slowly: the sizes collector runs every few minutes.
SELECT current_database()::text AS database,
       s.relid::int8 AS relid,
       z.table_bytes AS size_bytes,
       z.table_bytes + z.index_bytes AS total_size_bytes
  FROM pg_stat_user_tables s
  -- Each size once: pg_total_relation_size would measure the table (and its
  -- TOAST) a second time.
  CROSS JOIN LATERAL (SELECT pg_table_size(s.relid) AS table_bytes,
                             pg_indexes_size(s.relid) AS index_bytes) z
