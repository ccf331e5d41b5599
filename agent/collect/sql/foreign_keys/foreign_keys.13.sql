-- foreign_keys/foreign_keys: every foreign key of the current database (the
-- topmost one on a partitioned table, not its per-partition clones), its
-- referencing columns, and the key columns of every index on the referencing
-- table, so a pure rule can tell whether an index leads with the key.
-- Partitioned tables are sized by the sum of their partitions, every other
-- table by its own size (pg_partition_tree() has no rows for a plain table).
SELECT current_database()::text AS database,
       con.oid::int8 AS constraint_oid,
       n.nspname::text AS schema,
       c.relname::text AS relation,
       c.relkind::text AS relkind,
       con.conname::text AS constraint_name,
       ARRAY(SELECT a.attname::text
               FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS columns,
       rn.nspname::text AS referenced_schema,
       rc.relname::text AS referenced_relation,
       greatest(c.reltuples, (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)
                                FROM pg_partition_tree(c.oid) t
                                JOIN pg_class p ON p.oid = t.relid
                               WHERE t.isleaf))::float8 AS reltuples,
       (CASE WHEN c.relkind = 'p'
             THEN (SELECT coalesce(sum(pg_table_size(t.relid)), 0)
                     FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
             ELSE pg_table_size(c.oid) END)::int8 AS size_bytes,
       ARRAY(SELECT array_to_string(ARRAY(SELECT coalesce(a.attname::text, '')
                                            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                                            LEFT JOIN pg_attribute a
                                              ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                           WHERE k.ord <= i.indnkeyatts
                                           ORDER BY k.ord), ',')
               FROM pg_index i
              WHERE i.indrelid = con.conrelid AND i.indpred IS NULL
              ORDER BY i.indexrelid) AS index_keys
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class rc ON rc.oid = con.confrelid
  JOIN pg_namespace rn ON rn.oid = rc.relnamespace
 WHERE con.contype = 'f'
   AND con.conparentid = 0
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%'
