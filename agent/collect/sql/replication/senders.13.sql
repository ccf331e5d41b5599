-- replication/senders: one row per standby streaming from this server
-- (pg_stat_replication), with the lag times in seconds and byte distances
-- from this server's WAL position. Same columns on 13 to 18. The lag times are
-- NULL until a standby first replies and keep their last value while the
-- primary is idle (DESIGN section 7): the classifier weighs them with bytes.
WITH here AS (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                ELSE pg_current_wal_lsn() END AS lsn
)
SELECT r.pid,
       coalesce(nullif(r.application_name, ''), host(r.client_addr), r.pid::text) AS standby,
       coalesce(host(r.client_addr), '') AS client_addr,
       coalesce(r.state, '') AS state,
       coalesce(r.sync_state, '') AS sync_state,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       pg_wal_lsn_diff(here.lsn, r.sent_lsn)::float8 AS sent_behind_bytes,
       pg_wal_lsn_diff(here.lsn, r.write_lsn)::float8 AS write_behind_bytes,
       pg_wal_lsn_diff(here.lsn, r.flush_lsn)::float8 AS flush_behind_bytes,
       pg_wal_lsn_diff(here.lsn, r.replay_lsn)::float8 AS replay_behind_bytes,
       pg_wal_lsn_diff(r.replay_lsn, '0/0')::float8 AS replay_wal_bytes,
       r.reply_time
  FROM pg_stat_replication r CROSS JOIN here
 ORDER BY 2
