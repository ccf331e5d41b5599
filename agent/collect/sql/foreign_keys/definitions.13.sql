-- foreign_keys/definitions: the catalog side of the given foreign keys
-- (%(constraint_oids)s), read once and then only for foreign keys that are new
-- or whose catalog rows changed (foreign_keys/counters' stamp). The columns
-- are those of foreign_keys/foreign_keys without reltuples and size_bytes,
-- which foreign_keys/counters reads every poll: the names, the referencing
-- columns, and the key columns of every non-partial index on the referencing
-- table, so a pure rule can tell whether an index leads with the key.
SELECT con.oid::int8 AS constraint_oid,
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
 WHERE con.oid = ANY (%(constraint_oids)s::oid[])
