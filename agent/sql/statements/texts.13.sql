-- statements/texts: normalized texts of the given queryids only, so texts
-- cross the wire once per new statement. Same on 13 to 18. Before 16 pgradar
-- plans by PREPARE, whose entry (its role's, its text starting with our
-- comment) shares the statement's queryid: the application's text comes first.
SELECT DISTINCT ON (s.dbid, s.queryid)
       s.dbid::int8 AS dbid,
       s.queryid,
       s.query
  FROM {pgss}.pg_stat_statements(true) s
 WHERE s.queryid = ANY (%(queryids)s)
 ORDER BY s.dbid, s.queryid, s.query LIKE '-- explain/%%', s.calls DESC
