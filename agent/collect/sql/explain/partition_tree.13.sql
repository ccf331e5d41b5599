-- explain/partition_tree: the partitions of a partitioned table under it, at
-- every level (a partition may be partitioned in turn), each with its parent
-- and whether it is a leaf: the script that builds a partitioned table's
-- index without locking writes (ON ONLY the parents, CONCURRENTLY on each
-- leaf, ATTACH PARTITION) names each of them.
SELECT n.nspname::text AS schema,
       c.relname::text AS relation,
       pn.nspname::text AS parent_schema,
       p.relname::text AS parent_relation,
       t.isleaf AS leaf
  FROM pg_partition_tree(to_regclass(%(name)s)) t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class p ON p.oid = t.parentrelid
  JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE t.level > 0
 ORDER BY t.level, n.nspname, c.relname
