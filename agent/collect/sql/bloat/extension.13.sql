-- bloat/extension: the schema of pgstattuple in this database, if it is
-- created there (its functions are granted to pg_stat_scan_tables, which
-- pg_monitor holds). Same on 13 to 18.
SELECT n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'pgstattuple'
