-- explain/column_stats: distinct values per column of one table (pg_stats,
-- which shows only the columns the role may read; the partitioned table's
-- own statistics are its inherited ones), to put the most selective
-- equality column of an index first. A negative n_distinct is a share of
-- the rows.
SELECT attname::text AS column_name,
       max(CASE WHEN n_distinct < 0 THEN -n_distinct * %(reltuples)s ELSE n_distinct END)::float8 AS n_distinct
  FROM pg_stats
 WHERE schemaname = %(schema)s AND tablename = %(relation)s
 GROUP BY attname
