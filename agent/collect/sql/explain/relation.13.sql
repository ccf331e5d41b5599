-- explain/relation: a relation named as in a statement, resolved with the
-- statement's search path: its schema, kind (p: partitioned), size, the
-- key columns of each valid, non-partial index (comma-joined, '' for an
-- expression), including partitioned indexes, and for a partition the
-- partitioned table at the top of its tree (advice goes there); its width
-- in columns (for a covering index).
SELECT n.nspname::text AS schema,
       c.relname::text AS relation,
       c.relkind::text AS relkind,
       c.relnatts::int AS columns,
       greatest(c.reltuples, (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)
                                FROM pg_partition_tree(c.oid) t
                                JOIN pg_class p ON p.oid = t.relid
                               WHERE t.isleaf))::float8 AS reltuples,
       ARRAY(SELECT array_to_string(ARRAY(SELECT coalesce(a.attname::text, '')
                                            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                                            LEFT JOIN pg_attribute a
                                              ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                                           WHERE k.ord <= i.indnkeyatts
                                           ORDER BY k.ord), ',')
               FROM pg_index i
              WHERE i.indrelid = c.oid AND i.indpred IS NULL AND i.indisvalid) AS index_keys,
       rn.nspname::text AS root_schema,
       r.relname::text AS root
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class r ON c.relispartition AND r.oid = pg_partition_root(c.oid)
  LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
 WHERE c.oid = to_regclass(%(name)s)
