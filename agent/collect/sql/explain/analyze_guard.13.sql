-- explain/analyze_guard: first thing in the transaction that runs EXPLAIN
-- ANALYZE: make it read-only whatever the session's default, bound it by
-- what is left of the cycle's budget (never above the session's own
-- statement_timeout), and ask the server, now, whether it is a standby.
SELECT pg_is_in_recovery() AS in_recovery,
       set_config('transaction_read_only', 'on', true) AS read_only,
       set_config('statement_timeout',
                  (CASE WHEN s.setting::int8 = 0 THEN %(ms)s::int8
                        ELSE least(s.setting::int8, %(ms)s::int8) END)::text, true) AS statement_timeout_ms
  FROM pg_settings s
 WHERE s.name = 'statement_timeout'
