-- statements/since: when the oldest pg_stat_statements entry began counting
-- (stats_since, 17+): the window a one-pass `pgradar check` judges. Before 17
-- the window is pg_stat_statements_info.stats_reset (14+) or the server start (13).
SELECT min(s.stats_since) AS since
  FROM {pgss}.pg_stat_statements(false) s
 WHERE s.queryid IS NOT NULL
