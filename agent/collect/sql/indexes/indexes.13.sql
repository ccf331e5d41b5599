-- indexes/indexes: every user index of the current database with what the
-- classifiers need: usage, size, definition, key columns (NULL for an
-- expression), and whether it backs a constraint. 13 to 15; 16 adds
-- last_idx_scan (indexes.16.sql).
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
       k.columns,  -- NULL for an expression
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_get_expr(i.indexprs, i.indrelid) AS expressions,
       con.contype AS constraint_type,
       NULL::timestamptz AS last_idx_scan,
       -- an index of a partition attached to a partitioned index: the
       -- partitioned index and table at the top of the tree (else NULL)
       rn.nspname::text AS root_schema,
       rt.relname::text AS root_relation,
       ri.relname::text AS root_index,
       -- each key's column type (NULL for an expression): which casts of it are
       -- no-ops, and the type a rewritten predicate casts its value to. Columns
       -- in the order of IndexStat's fields: rows are built by position.
       k.column_types
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  JOIN pg_class ic ON ic.oid = s.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  -- one pass over the keys for both arrays (two ARRAY subqueries cost a fifth more)
  CROSS JOIN LATERAL (SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns,
                             array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) AS column_types
                        FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) k
  LEFT JOIN pg_class ri ON ri.oid = pg_partition_root(s.indexrelid) AND ri.oid <> s.indexrelid
  LEFT JOIN pg_index rix ON rix.indexrelid = ri.oid
  LEFT JOIN pg_class rt ON rt.oid = rix.indrelid
  LEFT JOIN pg_namespace rn ON rn.oid = ri.relnamespace
  -- Joined, not a subquery per index: pg_constraint has no index on conindid,
  -- and a scan of it per index made this query quadratic (3.7 s for 2,050
  -- indexes in one database; bench/README.md).
  LEFT JOIN (SELECT DISTINCT ON (conindid) conindid, contype::text AS contype
               FROM pg_constraint
              WHERE contype IN ('p', 'u', 'x') AND conindid <> 0
              ORDER BY conindid, contype) con ON con.conindid = s.indexrelid
