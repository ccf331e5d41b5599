-- replication/position: this server's WAL position in bytes, one row. Same on
-- 13 to 18. On a standby pg_current_wal_lsn() is an error, so its position is
-- the last WAL received (what it could replay at most).
SELECT pg_is_in_recovery() AS in_recovery,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                            ELSE pg_current_wal_lsn() END, '0/0')::float8 AS wal_bytes
