-- sessions/connections: client connections by database, user, application
-- and state, this session included (it uses a slot too). Same on 13 to 18.
SELECT coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       coalesce(a.application_name, '') AS application,
       coalesce(a.state, '') AS state,
       count(*)::int AS connections
  FROM pg_stat_activity a
 WHERE a.backend_type = 'client backend'
 GROUP BY 1, 2, 3, 4
