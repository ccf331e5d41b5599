-- sizes/databases: on-disk size of the databases pgradar visits. Same on 13
-- to 18. pg_database_size stats every file of a database (some 16,000 for a
-- database of 2,600 tables: 40 ms), so a size is read again only once the one
-- kept is DATABASE_SIZE_EVERY old (collect_sizes): the databases named in
-- %(fresh)s come back with a NULL size, for the agent to keep its own.
SELECT d.datname AS database,
       CASE WHEN d.datname <> ALL (%(fresh)s::text[]) THEN pg_database_size(d.oid) END AS size_bytes
  FROM pg_database d
 WHERE d.datallowconn AND NOT d.datistemplate
