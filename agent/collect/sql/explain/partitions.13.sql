-- explain/partitions: a partitioned table (named as in a statement, resolved
-- with the statement's search path): its key columns (NULL where the key is an
-- expression), the key as declared, and its leaf partitions (schema.relation).
SELECT ARRAY(SELECT a.attname::text
               FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS key_columns,
       pg_get_partkeydef(pt.partrelid) AS key_definition,
       ARRAY(SELECT n.nspname::text || '.' || c.relname::text
               FROM pg_partition_tree(pt.partrelid) t
               JOIN pg_class c ON c.oid = t.relid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE t.isleaf) AS leaves
  FROM pg_partitioned_table pt
 WHERE pt.partrelid = to_regclass(%(name)s)
