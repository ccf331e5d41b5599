-- pgbouncer/databases: per-database pool_size, reserve_pool, max_connections and current connections.
-- pgbouncer's admin console, 1.x; its columns vary by release, so the
-- collector reads them by name and tolerates missing ones.
SHOW DATABASES
