-- indexes/counters: what changes between two polls of every user index of the
-- current database (usage, names), a stamp of its catalog rows and one of its size. The
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
                 END) AS stamp,
       -- The size stamp: indexes/sizes reads pg_relation_size again only where
       -- it is new. An index's file changes length with its table's writes
       -- (n_tup_ins, n_tup_upd, n_tup_del, rolled-back ones counted too), with
       -- its table's VACUUM and ANALYZE (a GIN pending list is merged into the
       -- index; BRIN ranges are summarized), and gets a new relfilenode from
       -- REINDEX, TRUNCATE, VACUUM FULL and CLUSTER; a concurrent build fills
       -- its file under the same relfilenode and then sets relpages, and the
       -- pg_index row's xmin when it turns valid. relpages is also set by
       -- VACUUM and ANALYZE from the file's length. The counters arrive when the
       -- writing transaction ends and its backend reports (sizes/table_stamps
       -- says how late): a size can be a poll late. NULL (read every time) on
       -- a standby, where replayed writes move no counter, and with
       -- track_counts off. What grows an index outside these
       -- (brin_summarize_new_values, gin_clean_pending_list called by hand,
       -- BRIN autosummarize: autovacuum's work item after the insert was
       -- counted) is seen at the table's next write, VACUUM or ANALYZE.
       CASE WHEN current_setting('track_counts')::bool AND NOT pg_is_in_recovery() THEN
         concat_ws(' ', ic.relfilenode, ic.relpages, i.xmin,
                   pg_stat_get_tuples_inserted(s.relid), pg_stat_get_tuples_updated(s.relid),
                   pg_stat_get_tuples_deleted(s.relid), pg_stat_get_vacuum_count(s.relid),
                   pg_stat_get_autovacuum_count(s.relid), pg_stat_get_analyze_count(s.relid),
                   pg_stat_get_autoanalyze_count(s.relid))
       END AS size_stamp
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
