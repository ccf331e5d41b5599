-- statements/texts: normalized texts of the given (dbid, queryid) pairs only,
-- so texts cross the wire once per new statement (a queryid alone would bring
-- back its known texts in other databases too). One queryid can have several
-- entries (per user, nested or not), and with pg_stat_statements.track = all
-- the nested entry of a statement planned by EXPLAIN or PREPARE carries the
-- whole wrapper's text: a text without pgradar's marker wins, then one that
-- is not an EXPLAIN/PREPARE wrapper, then the shortest, so the choice never
-- depends on the order of the hash table. 13 has no toplevel column.
SELECT DISTINCT ON (s.dbid, s.queryid)
       s.dbid::int8 AS dbid,
       s.queryid,
       s.query
  FROM {pgss}.pg_stat_statements(true) s
 WHERE (s.dbid, s.queryid) IN (SELECT * FROM unnest(%(dbids)s::oid[], %(queryids)s::int8[]))
 ORDER BY s.dbid, s.queryid,
          rtrim(s.query, E' \t\n;') LIKE '%%/* pgradar */',
          s.query ~* '^\s*((/\*.*?\*/|--[^\n]*)\s*)*(explain|prepare)\M',
          length(s.query), s.query, s.userid
