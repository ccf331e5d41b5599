-- explain/generic: 16 plans a statement with $n parameters directly, as a
-- generic plan, without running it.
EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) {statement}
