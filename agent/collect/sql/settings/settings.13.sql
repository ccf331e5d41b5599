-- settings/settings: the settings classification needs, in their own units
-- (pg_settings.unit says which). Same on 13 to 18.
SELECT name, setting, coalesce(unit, '') AS unit
  FROM pg_settings
 WHERE name IN ('max_connections', 'superuser_reserved_connections',
                'reserved_connections', 'work_mem', 'track_io_timing',
                'autovacuum', 'autovacuum_vacuum_threshold',
                'autovacuum_vacuum_scale_factor', 'autovacuum_analyze_threshold',
                'autovacuum_analyze_scale_factor', 'autovacuum_freeze_max_age',
                'autovacuum_multixact_freeze_max_age', 'pg_stat_statements.max',
                'pg_stat_statements.track', 'compute_query_id',
                'idle_in_transaction_session_timeout', 'statement_timeout',
                'block_size', 'max_wal_size', 'parallel_leader_participation',
                -- read by wait_bottleneck's fixes (absent names: no row)
                'shared_buffers', 'synchronous_commit', 'max_locks_per_transaction',
                'subtransaction_buffers', 'multixact_offset_buffers', 'multixact_member_buffers')
