-- pgbouncer/pools: clients active and waiting, server connections and the longest wait, per pool (database, user).
-- pgbouncer's admin console, 1.x; its columns vary by release, so the
-- collector reads them by name and tolerates missing ones.
SHOW POOLS
