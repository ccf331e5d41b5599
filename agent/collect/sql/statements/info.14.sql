-- statements/info: evictions and the last reset of pg_stat_statements
-- (pg_stat_statements_info arrived in 14; 13 has no equivalent).
SELECT dealloc, stats_reset
  FROM {pgss}.pg_stat_statements_info
