-- bloat/indexes: the wasted space of every user B-tree index estimated from
-- the statistics, without reading it (the method of the ioguix
-- pgsql-bloat-estimation B-tree query): the entry size from pg_stats' average
-- widths of the key columns (an expression key: the index's own statistics; a
-- fixed-width column the role may not read counts its type's length), the
-- 8-byte entry header (12 with a null bitmap), alignment and a line pointer;
-- the leaf pages reltuples entries would fill at the index's fillfactor (90
-- by default) plus the metapage; the rest of relpages is wasted. Internal
-- pages and 13's deduplication are left out: the estimate errs towards less
-- waste. wasted_bytes is NULL where a variable-width key has no readable
-- statistics. Same catalogs on 13 to 18.
WITH keys AS (
    SELECT i.indexrelid, i.indrelid, k.attnum, k.pos
      FROM pg_index i
      JOIN pg_class ci ON ci.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ci.relam AND am.amname = 'btree'
      JOIN pg_namespace n ON n.oid = ci.relnamespace
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
     WHERE ci.relpages > 0 AND ci.relkind = 'i'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
), widths AS (
    SELECT keys.indexrelid,
           count(*) AS columns,
           count(*) FILTER (WHERE s.attname IS NOT NULL OR coalesce(a1.attlen, a2.attlen) > 0) AS known,
           max(coalesce(s.null_frac, 0)) AS max_null_frac,
           sum(CASE WHEN s.attname IS NOT NULL THEN (1 - s.null_frac) * s.avg_width
                    ELSE greatest(coalesce(a1.attlen, a2.attlen), 0) END) AS data_width
      FROM keys
      JOIN pg_class ct ON ct.oid = keys.indrelid
      JOIN pg_class ci ON ci.oid = keys.indexrelid
      JOIN pg_namespace n ON n.oid = ct.relnamespace
      LEFT JOIN pg_attribute a1 ON keys.attnum <> 0 AND a1.attrelid = keys.indrelid AND a1.attnum = keys.attnum
      LEFT JOIN pg_attribute a2 ON keys.attnum = 0 AND a2.attrelid = keys.indexrelid AND a2.attnum = keys.pos
      LEFT JOIN pg_stats s
        ON s.schemaname = n.nspname AND NOT s.inherited
       AND s.tablename = CASE WHEN keys.attnum = 0 THEN ci.relname ELSE ct.relname END
       AND s.attname = coalesce(a1.attname, a2.attname)
     GROUP BY keys.indexrelid
), est AS (
    SELECT ci.oid AS indexrelid, n.nspname AS schema, ct.relname AS relation, ci.relname AS index,
           ci.reltuples, ci.relpages,
           coalesce(substring(array_to_string(ci.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 90) AS fillfactor,
           current_setting('block_size')::int AS bs,
           -- MAXALIGN (8) of the header (and bitmap) and of the key data, plus the 4-byte line pointer
           4 + ceil((CASE WHEN w.max_null_frac > 0 THEN 12 ELSE 8 END) / 8.0) * 8 + ceil(w.data_width / 8.0) * 8
               AS entry_bytes,
           w.known = w.columns AS estimable
      FROM widths w
      JOIN pg_class ci ON ci.oid = w.indexrelid
      JOIN pg_index i ON i.indexrelid = ci.oid
      JOIN pg_class ct ON ct.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = ct.relnamespace
)
SELECT current_database() AS database,
       indexrelid::int8 AS indexrelid,
       schema,
       relation,
       index,
       (relpages::int8 * bs) AS size_bytes,
       CASE WHEN estimable AND reltuples >= 0 THEN
           (greatest(0, relpages - 1
                        - ceil(reltuples / greatest(1, floor((bs - 24 - 16) * fillfactor / 100.0 / entry_bytes))))
            * bs)::int8
       END AS wasted_bytes,
       fillfactor
  FROM est
 ORDER BY 1, 3, 4, 5
