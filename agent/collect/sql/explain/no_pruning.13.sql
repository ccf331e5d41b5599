-- explain/no_pruning: before 16 the generic plan of EXECUTE p(NULL, ...)
-- prunes every partition at executor start (a NULL matches nothing), so
-- no scan is left to advise on; for that one EXPLAIN, inside a savepoint
-- that is rolled back, the partitions are planned without pruning.
SELECT set_config('enable_partition_pruning', 'off', true) AS enable_partition_pruning
