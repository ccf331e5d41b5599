-- replication/receiver: a standby's own view, one row (run only in
-- recovery: the replay functions are errors on a primary). Before 14 there
-- is only pg_is_wal_replay_paused(), which cannot tell "pause requested"
-- from "paused". pg_stat_wal_receiver has no row while no WAL receiver runs.
-- The name a primary knows this standby by is the application_name of the
-- receiver's conninfo (else its fallback: cluster_name or walreceiver).
SELECT coalesce(substring(w.conninfo FROM '(?:^|\s)application_name=''?([^'' ]+)'),
                substring(w.conninfo FROM 'fallback_application_name=''?([^'' ]+)'),
                nullif(current_setting('cluster_name'), ''), 'walreceiver') AS standby_name,
       coalesce(w.status, '') AS receiver_status,
       coalesce(w.slot_name, '') AS slot_name,
       coalesce(w.sender_host, '') AS sender_host,
       w.sender_port,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::float8 AS receive_wal_bytes,
       pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::float8 AS replay_wal_bytes,
       pg_wal_lsn_diff(w.latest_end_lsn, '0/0')::float8 AS primary_wal_bytes,
       w.last_msg_receipt_time,
       pg_last_xact_replay_timestamp() AS last_replay_at,
       CASE WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'not paused' END AS pause_state
  FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true
