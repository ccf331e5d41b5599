-- explain/search_path: the statement's own search path for this transaction
-- (sessions run with search_path=pg_catalog; application texts are
-- unqualified), e.g. '"$user", public' with the statement's user.
SELECT set_config('search_path', %(path)s, true) AS search_path
