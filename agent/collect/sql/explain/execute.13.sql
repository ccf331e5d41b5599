-- explain/execute: the generic plan of the prepared statement; {statement}
-- is the argument list, NULL for every parameter. Never executed.
EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE pgradar_explain{statement}
