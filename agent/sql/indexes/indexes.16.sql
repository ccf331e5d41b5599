-- indexes/indexes: 16 adds last_idx_scan, the time of the last scan of
-- the index; the rest as in 13.
SELECT current_database()::text AS database,
       s.indexrelid::int8 AS indexrelid,
       s.relid::int8 AS relid,
       s.schemaname AS schema,
       s.relname AS relation,
       s.indexrelname AS index,
       s.idx_scan,
       s.idx_tup_read,
       s.idx_tup_fetch,
       pg_relation_size(s.indexrelid) AS size_bytes,
       pg_get_indexdef(s.indexrelid) AS definition,
       am.amname AS method,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       i.indisvalid AS is_valid,
       i.indnkeyatts::int AS key_count,
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS columns,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_get_expr(i.indexprs, i.indrelid) AS expressions,
       (SELECT con.contype::text FROM pg_constraint con
         WHERE con.conindid = s.indexrelid AND con.contype IN ('p', 'u', 'x')
         LIMIT 1) AS constraint_type,
       s.last_idx_scan,
       -- an index of a partition attached to a partitioned index: the
       -- partitioned index and table at the top of the tree (else NULL)
       rn.nspname::text AS root_schema,
       rt.relname::text AS root_relation,
       ri.relname::text AS root_index
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  JOIN pg_class ic ON ic.oid = s.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN pg_class ri ON ri.oid = pg_partition_root(s.indexrelid) AND ri.oid <> s.indexrelid
  LEFT JOIN pg_index rix ON rix.indexrelid = ri.oid
  LEFT JOIN pg_class rt ON rt.oid = rix.indrelid
  LEFT JOIN pg_namespace rn ON rn.oid = ri.relnamespace
