-- bloat/measure_index: one B-tree index's wasted space measured by
-- pgstatindex (a full read of the index): the leaf space its entries would
-- fill at the index's fillfactor, from avg_leaf_density, subtracted from the
-- leaf pages, plus the empty and deleted pages. Same on 13 to 18.
SELECT s.index_size::int8 AS size_bytes,
       greatest(0, (s.leaf_pages * (1 - s.avg_leaf_density / %(fillfactor)s::float8)
                    + s.empty_pages + s.deleted_pages) * current_setting('block_size')::int)::int8 AS wasted_bytes
  FROM {pgstattuple}.pgstatindex(%(indexrelid)s::oid::regclass) s
