-- pgbouncer/config: every setting (key, value); the pool size defaults come from here.
-- pgbouncer's admin console, 1.x; its columns vary by release, so the
-- collector reads them by name and tolerates missing ones.
SHOW CONFIG
