-- custom/timeout: a custom query's own statement_timeout, for its transaction only
-- (SET LOCAL cannot take a bound value; set_config can). Same on 13 to 18.
SELECT set_config('statement_timeout', %(ms)s, true) AS statement_timeout /* pgradar */
