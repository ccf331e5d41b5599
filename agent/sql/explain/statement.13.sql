-- explain/statement: one statement's text, database and user by queryid,
-- for `pgradar explain --queryid`.
SELECT s.query AS query, d.datname::text AS database, r.rolname::text AS username
  FROM {pgss}.pg_stat_statements s
  JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.queryid = %(queryid)s
 ORDER BY s.total_exec_time DESC
 LIMIT 1
