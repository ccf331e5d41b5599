-- explain/statement: one statement's text, database and user by queryid,
-- for `pgradar explain --queryid`. The application's own text wins over
-- pgradar's marked EXPLAIN/PREPARE wrappers recorded under the same queryid
-- (pg_stat_statements.track = all), as in statements/texts.
SELECT s.query AS query, d.datname::text AS database, r.rolname::text AS username
  FROM {pgss}.pg_stat_statements s
  JOIN pg_database d ON d.oid = s.dbid
  LEFT JOIN pg_roles r ON r.oid = s.userid
 WHERE s.queryid = %(queryid)s
 ORDER BY rtrim(s.query, E' \t\n;') LIKE '%%/* pgradar */',
          s.query ~* '^\s*((/\*.*?\*/|--[^\n]*)\s*)*(explain|prepare)\M',
          s.total_exec_time DESC, length(s.query), s.query
 LIMIT 1
