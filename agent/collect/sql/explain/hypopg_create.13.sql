-- explain/hypopg_create: a hypothetical index, seen only by this session's
-- planner; nothing is built or written.
SELECT indexrelid::int8 AS indexrelid, indexname::text AS indexname
  FROM {hypopg}.hypopg_create_index(%(definition)s)
