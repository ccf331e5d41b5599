-- replication/slots: 17 adds inactive_since (when the slot was last
-- released) and invalidation_reason (why a slot can no longer be used).
WITH here AS (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                ELSE pg_current_wal_lsn() END AS lsn
)
SELECT s.slot_name AS slot,
       s.slot_type,
       coalesce(s.database, '') AS database,
       s.temporary,
       s.active,
       s.active_pid,
       pg_wal_lsn_diff(here.lsn, s.restart_lsn)::float8 AS retained_bytes,
       coalesce(s.wal_status, '') AS wal_status,
       s.safe_wal_size::float8 AS safe_wal_size_bytes,
       s.inactive_since,
       s.invalidation_reason
  FROM pg_replication_slots s CROSS JOIN here
 ORDER BY 1
