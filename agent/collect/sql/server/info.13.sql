-- server/info: identity, role and what this session may read; one row.
-- Same on 13 to 18. pg_stat_statements counts as loaded when its GUCs exist
-- (pg_settings is readable by every role, shared_preload_libraries is not).
SELECT current_setting('server_version_num')::int AS version_num,
       pg_is_in_recovery() AS in_recovery,
       pg_postmaster_start_time() AS started_at,
       (SELECT n.nspname
          FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements') AS pgss_schema,
       EXISTS (SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.max') AS pgss_preloaded,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS has_pg_monitor
