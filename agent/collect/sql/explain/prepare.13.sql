-- explain/prepare: before 16 a statement with $n parameters is planned by
-- preparing it (the server infers the parameter types) and explaining an
-- EXECUTE with NULLs under plan_cache_mode = force_generic_plan.
PREPARE pgradar_explain AS {statement}
