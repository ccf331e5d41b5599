-- bloat/tables: the wasted space of every user table estimated from the
-- statistics, without reading it (the method of the ioguix
-- pgsql-bloat-estimation queries): the row size from pg_stats' average widths
-- and null fractions (a fixed-width column the role may not read in pg_stats
-- counts its type's length), the header with its null bitmap and alignment, a
-- line pointer each; the pages the live rows (reltuples) would fill at the
-- table's fillfactor, plus a quarter page per TOAST chunk; the rest of
-- relpages is wasted. wasted_bytes is NULL where a variable-width column has
-- no statistics the role may read (never analyzed, or no SELECT on it:
-- pg_stats shows only readable columns), or the table was never analyzed.
-- mxid_age is the age of the table's oldest multixact (relminmxid), for
-- multixact_wraparound to name the table that holds the database back.
-- Same catalogs on 13 to 18 (reltuples is -1 before the first analyze on 14+).
WITH cols AS (
    SELECT a.attrelid AS relid,
           count(*) AS columns,
           count(*) FILTER (WHERE s.attname IS NOT NULL OR a.attlen > 0) AS known,
           max(coalesce(s.null_frac, 0)) AS max_null_frac,
           sum(CASE WHEN s.attname IS NOT NULL THEN (1 - s.null_frac) * s.avg_width
                    WHEN a.attlen > 0 THEN a.attlen ELSE 0 END) AS data_width
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_stats s
        ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname AND NOT s.inherited
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'm')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
     GROUP BY a.attrelid
), est AS (
    SELECT c.oid AS relid, n.nspname AS schema, c.relname AS relation, c.reltuples,
           c.relpages AS heap_pages, coalesce(t.relpages, 0) AS toast_pages,
           greatest(coalesce(t.reltuples, 0), 0) AS toast_tuples, c.reltoastrelid,
           greatest(mxid_age(c.relminmxid), mxid_age(coalesce(t.relminmxid, c.relminmxid))) AS mxid_age,
           coalesce(substring(array_to_string(c.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::int, 100) AS fillfactor,
           current_setting('block_size')::int AS bs,
           23 + CASE WHEN cols.max_null_frac > 0 THEN (7 + cols.columns) / 8 ELSE 0 END AS hdr,
           cols.data_width AS data, cols.known = cols.columns AS estimable
      FROM cols
      JOIN pg_class c ON c.oid = cols.relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
), sized AS (
    -- MAXALIGN (8) of the header and of the data, plus the 4-byte line pointer
    SELECT *, 4 + ceil(hdr / 8.0) * 8 + ceil(data / 8.0) * 8 AS tuple_bytes FROM est
)
SELECT current_database() AS database,
       relid::int8 AS relid,
       schema,
       relation,
       ((heap_pages + toast_pages)::int8 * bs) AS size_bytes,
       CASE WHEN estimable AND reltuples >= 0 THEN
           (greatest(0, heap_pages + toast_pages
                        - ceil(reltuples / greatest(1, least(floor((bs - 24) * fillfactor / 100.0 / tuple_bytes), 291)))
                        - ceil(toast_tuples / 4)) * bs)::int8
       END AS wasted_bytes,
       fillfactor,
       nullif(reltoastrelid, 0)::int8 AS toast_relid,
       mxid_age::int8 AS mxid_age
  FROM sized
 WHERE heap_pages > 0
 ORDER BY 1, 3, 4
