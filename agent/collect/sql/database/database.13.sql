-- database/database: pg_stat_database for the databases pgradar visits,
-- with transaction ID age (sizes: sizes/databases). Same columns on 13 to 18.
SELECT d.datname AS database,
       s.numbackends,
       s.xact_commit,
       s.xact_rollback,
       s.blks_read,
       s.blks_hit,
       s.tup_returned,
       s.tup_fetched,
       s.tup_inserted,
       s.tup_updated,
       s.tup_deleted,
       s.conflicts,
       s.temp_files,
       s.temp_bytes,
       s.deadlocks,
       s.blk_read_time AS blk_read_ms,
       s.blk_write_time AS blk_write_ms,
       s.stats_reset,
       NULL::int8 AS size_bytes,  -- from sizes/databases.13.sql, on a slower cadence
       age(d.datfrozenxid) AS xid_age,
       mxid_age(d.datminmxid) AS mxid_age
  FROM pg_database d
  JOIN pg_stat_database s ON s.datid = d.oid
 WHERE d.datallowconn AND NOT d.datistemplate
