-- replication/receiver: 14 adds pg_get_wal_replay_pause_state(), which
-- tells 'pause requested' (replay not stopped yet) from 'paused'.
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
       pg_get_wal_replay_pause_state() AS pause_state
  FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver w ON true
