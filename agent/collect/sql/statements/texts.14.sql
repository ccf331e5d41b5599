-- statements/texts: 14 adds toplevel: after the marker and the
-- EXPLAIN/PREPARE wrappers (see texts.13.sql), a top-level entry's text wins
-- over a nested one's.
SELECT DISTINCT ON (s.dbid, s.queryid)
       s.dbid::int8 AS dbid,
       s.queryid,
       s.query
  FROM {pgss}.pg_stat_statements(true) s
 WHERE (s.dbid, s.queryid) IN (SELECT * FROM unnest(%(dbids)s::oid[], %(queryids)s::int8[]))
 ORDER BY s.dbid, s.queryid,
          rtrim(s.query, E' \t\n;') LIKE '%%/* pgradar */',
          s.query ~* '^\s*((/\*.*?\*/|--[^\n]*)\s*)*(explain|prepare)\M',
          NOT s.toplevel,
          length(s.query), s.query, s.userid
