-- indexes/counters: what changes between two polls of every user index of the
-- current database (usage, size, names), and a stamp of its catalog rows. The
-- definitions (indexes/definitions) are read again only for indexes that are
-- new or whose stamp changed; a full read of them is indexes/indexes.
-- The stamp is the xmin of every catalog row the definition is built from:
-- an UPDATE of a catalog row (RENAME, ATTACH PARTITION, a constraint added,
-- indisvalid set) writes a new row version with a new xmin, while VACUUM and
-- ANALYZE change pg_class in place and leave it. REINDEX CONCURRENTLY and a
-- column type change create a new index (a new indexrelid). 13 to 15; 16
-- adds last_idx_scan (counters.16.sql).
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
       NULL::timestamptz AS last_idx_scan,
       concat_ws(' ', ic.xmin, i.xmin, tc.xmin, n.xmin, con.xmins,
                 -- the columns named in the definition: the keys, or every
                 -- column of the table when an expression or predicate names them
                 (SELECT string_agg(a.xmin::text, ',' ORDER BY a.attnum)
                    FROM pg_attribute a
                   WHERE a.attrelid = i.indrelid AND a.attnum > 0
                     AND (a.attnum = ANY (i.indkey) OR i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)),
                 -- the partitioned index, table and schema at the top of the tree
                 CASE WHEN ic.relispartition THEN
                   (SELECT concat_ws(',', ri.xmin, rix.xmin, rt.xmin, rn.xmin)
                      FROM pg_class ri
                      JOIN pg_index rix ON rix.indexrelid = ri.oid
                      JOIN pg_class rt ON rt.oid = rix.indrelid
                      JOIN pg_namespace rn ON rn.oid = ri.relnamespace
                     WHERE ri.oid = pg_partition_root(s.indexrelid))
                 END) AS stamp
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  JOIN pg_class ic ON ic.oid = s.indexrelid
  JOIN pg_class tc ON tc.oid = s.relid
  JOIN pg_namespace n ON n.oid = ic.relnamespace
  -- joined once (pg_constraint has no index on conindid; see indexes.13.sql)
  LEFT JOIN (SELECT conindid, string_agg(xmin::text, ',' ORDER BY oid) AS xmins
               FROM pg_constraint
              WHERE conindid <> 0
              GROUP BY conindid) con ON con.conindid = s.indexrelid
