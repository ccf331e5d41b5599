-- statements/pgss: 14 adds toplevel (the same statement nested and at top
-- level are separate entries).
SELECT s.userid::int8 AS userid,
       s.dbid::int8 AS dbid,
       s.queryid,
       s.toplevel,
       coalesce(d.datname, '') AS database,
       coalesce(r.rolname, '') AS username,
       s.calls,
       s.total_exec_time AS total_exec_ms,
       s.total_plan_time AS total_plan_ms,
       s.max_exec_time AS max_exec_ms,
       s.rows,
       s.shared_blks_hit,
       s.shared_blks_read,
       s.shared_blks_dirtied,
       s.shared_blks_written,
       s.temp_blks_read,
       s.temp_blks_written,
       s.blk_read_time AS blk_read_ms,
       s.blk_write_time AS blk_write_ms,
       s.wal_bytes::float8 AS wal_bytes
  FROM {pgss}.pg_stat_statements(false) s
  LEFT JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.queryid IS NOT NULL
   -- NULL: every entry (the first poll); else only the queryids whose stamp changed (statements/stamps)
   AND (%(queryids)s::int8[] IS NULL OR s.queryid = ANY (%(queryids)s::int8[]))
