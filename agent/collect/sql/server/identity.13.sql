-- server/identity: what a `pgradar check --baseline` file is checked against:
-- the cluster's system identifier (pg_control_system, readable by pg_monitor
-- roles through EXECUTE granted to public on 13 to 18) and the postmaster's
-- start time (counters do not survive every restart). Same on 13 to 18.
SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       pg_postmaster_start_time() AS started_at
