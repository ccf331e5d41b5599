-- pgbouncer/stats: per-database totals: transactions, queries, bytes, wait time.
-- pgbouncer's admin console, 1.x; its columns vary by release, so the
-- collector reads them by name and tolerates missing ones.
SHOW STATS
