-- explain/generic_mode: plan prepared statements generically (a custom plan
-- would be planned for the NULLs, which says nothing about real values).
SELECT set_config('plan_cache_mode', 'force_generic_plan', true) AS plan_cache_mode
