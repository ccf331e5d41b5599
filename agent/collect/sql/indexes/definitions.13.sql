-- indexes/definitions: the catalog side of the given indexes (%(indexrelids)s),
-- read once and then only for indexes that are new or whose catalog rows
-- changed (indexes/counters' stamp). The columns are those of indexes/indexes
-- without the counters and names, which indexes/counters reads every poll.
SELECT i.indexrelid::int8 AS indexrelid,
       pg_get_indexdef(i.indexrelid) AS definition,
       am.amname AS method,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       i.indisvalid AS is_valid,
       i.indnkeyatts::int AS key_count,
       k.columns,  -- NULL for an expression
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_get_expr(i.indexprs, i.indrelid) AS expressions,
       con.contype AS constraint_type,
       rn.nspname::text AS root_schema,
       rt.relname::text AS root_relation,
       ri.relname::text AS root_index,
       k.column_types
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  CROSS JOIN LATERAL (SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns,
                             array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) AS column_types
                        FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) k
  LEFT JOIN pg_class ri ON ri.oid = pg_partition_root(i.indexrelid) AND ri.oid <> i.indexrelid
  LEFT JOIN pg_index rix ON rix.indexrelid = ri.oid
  LEFT JOIN pg_class rt ON rt.oid = rix.indrelid
  LEFT JOIN pg_namespace rn ON rn.oid = ri.relnamespace
  -- joined once, not a lookup per index (pg_constraint has no index on conindid)
  LEFT JOIN (SELECT DISTINCT ON (conindid) conindid, contype::text AS contype
               FROM pg_constraint
              WHERE contype IN ('p', 'u', 'x') AND conindid = ANY (%(indexrelids)s::oid[])
              ORDER BY conindid, contype) con ON con.conindid = i.indexrelid
 WHERE i.indexrelid = ANY (%(indexrelids)s::oid[])
