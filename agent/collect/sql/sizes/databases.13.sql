-- sizes/databases: on-disk size of the databases pgradar visits. Same on 13
-- to 18. pg_database_size walks every file of a database: every few minutes,
-- not with the pg_stat_database counters.
SELECT d.datname AS database,
       pg_database_size(d.oid) AS size_bytes
  FROM pg_database d
 WHERE d.datallowconn AND NOT d.datistemplate
