-- explain/hypopg: the schema of the hypopg extension in this database, if
-- it is installed (hypothetical indexes verify index advice).
SELECT n.nspname::text AS schema
  FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'hypopg'
