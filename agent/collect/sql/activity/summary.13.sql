-- activity/summary: client sessions grouped by database, state and wait,
-- with the oldest transaction, longest statement and longest idle-in-
-- transaction time of each group. Same on 13 to 18. Texts are not read here.
SELECT coalesce(a.datname, '') AS database,
       coalesce(a.state, '') AS state,
       coalesce(a.wait_event_type, '') AS wait_event_type,
       count(*)::int AS sessions,
       coalesce(max(extract(epoch FROM now() - a.xact_start)), 0)::float8 AS oldest_xact_seconds,
       coalesce(max(extract(epoch FROM now() - a.query_start))
                FILTER (WHERE a.state = 'active'), 0)::float8 AS longest_query_seconds,
       coalesce(max(extract(epoch FROM now() - a.state_change))
                FILTER (WHERE a.state LIKE 'idle in transaction%%'), 0)::float8 AS longest_idle_in_xact_seconds
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend'
   AND a.pid <> pg_backend_pid()
 GROUP BY 1, 2, 3
