-- bloat/measure: one table's wasted space measured by pgstattuple_approx
-- (it reads the pages the visibility map does not mark all-visible and takes
-- the free space map's word for the others) and, for its TOAST table, which
-- pgstattuple_approx refuses, by pgstattuple (a full read): together, the
-- bytes of dead rows plus free space, less the free space the table's
-- fillfactor reserves on purpose. Same on 13 to 18.
WITH parts AS (
    SELECT a.table_len, a.dead_tuple_len, a.approx_free_space
      FROM {pgstattuple}.pgstattuple_approx(%(relid)s::oid) a
    UNION ALL
    SELECT a.table_len, a.dead_tuple_len, a.free_space
      FROM {pgstattuple}.pgstattuple(%(toast_relid)s::oid) a
     WHERE %(toast_relid)s::oid IS NOT NULL
)
SELECT sum(table_len)::int8 AS size_bytes,
       greatest(0, sum(dead_tuple_len + approx_free_space) - sum(table_len) * (100 - %(fillfactor)s) / 100.0)::int8
           AS wasted_bytes
  FROM parts
