-- foreign_keys/counters: what changes between two polls of every foreign key
-- of the current database (the referencing table's reltuples and size), and a
-- stamp of the catalog rows its definition is built from. The definitions
-- (foreign_keys/definitions) are read again only for foreign keys that are new
-- or whose stamp changed; a full read of both is foreign_keys/foreign_keys.
-- The stamp is the xmin of every such catalog row: the pg_constraint row, the
-- pg_class and pg_namespace rows of the referencing and the referenced table,
-- the referencing table's pg_attribute rows (the key columns and the columns
-- its indexes name), and the pg_index and pg_class rows of every index on the
-- referencing table with their oids. An UPDATE of a catalog row (RENAME of a
-- table, column, schema or constraint, ALTER CONSTRAINT, ATTACH/DETACH
-- PARTITION) writes a new row version with a new xmin; an index created,
-- dropped or rebuilt (REINDEX CONCURRENTLY) adds, removes or replaces an
-- entry of the index list. VACUUM and ANALYZE change pg_class in place
-- (reltuples, relpages) and leave its xmin, so the stamp stays while the
-- counters move. The table-side work (the sizes, the attribute and index
-- lists) is done once per referencing table, not once per foreign key.
-- Partitioned tables are sized by the sum of their partitions, every other
-- table by its own size (pg_partition_tree() has no rows for a plain table),
-- as in foreign_keys/foreign_keys.
WITH fk AS (
  SELECT con.oid, con.conrelid, con.xmin AS con_xmin, rc.xmin AS rc_xmin, rn.xmin AS rn_xmin
    FROM pg_constraint con
    JOIN pg_class rc ON rc.oid = con.confrelid
    JOIN pg_namespace rn ON rn.oid = rc.relnamespace
   WHERE con.contype = 'f'
     AND con.conparentid = 0
), referencing AS MATERIALIZED (
  SELECT c.oid,
         greatest(c.reltuples, (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)
                                  FROM pg_partition_tree(c.oid) t
                                  JOIN pg_class p ON p.oid = t.relid
                                 WHERE t.isleaf))::float8 AS reltuples,
         (CASE WHEN c.relkind = 'p'
               THEN (SELECT coalesce(sum(pg_table_size(t.relid)), 0)
                       FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
               ELSE pg_table_size(c.oid) END)::int8 AS size_bytes,
         concat_ws(' ', c.xmin, n.xmin,
                   (SELECT string_agg(a.xmin::text, ',' ORDER BY a.attnum)
                      FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0),
                   (SELECT string_agg(concat(i.indexrelid, ':', i.xmin, ':', ic.xmin), ',' ORDER BY i.indexrelid)
                      FROM pg_index i
                      JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE i.indrelid = c.oid)) AS stamp
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid IN (SELECT conrelid FROM fk)
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_toast%'
)
SELECT current_database()::text AS database,
       fk.oid::int8 AS constraint_oid,
       r.reltuples,
       r.size_bytes,
       concat_ws(' ', fk.con_xmin, fk.rc_xmin, fk.rn_xmin, r.stamp) AS stamp
  FROM fk
  JOIN referencing r ON r.oid = fk.conrelid
