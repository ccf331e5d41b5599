-- statements/texts: normalized texts of the given queryids only, so texts
-- cross the wire once per new statement. Same on 13 to 18.
SELECT DISTINCT ON (s.dbid, s.queryid)
       s.dbid::int8 AS dbid,
       s.queryid,
       s.query
  FROM {pgss}.pg_stat_statements(true) s
 WHERE s.queryid = ANY (%(queryids)s)
