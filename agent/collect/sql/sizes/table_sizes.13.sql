-- sizes/table_sizes: on-disk size of the given tables (%(relids)s) as
-- sizes/tables reads it (pg_table_size: with the TOAST, without the indexes),
-- asked only for the tables whose stamp (sizes/table_stamps) is new. Same on
-- 13 to 18. A table dropped since its stamp was read is not returned.
SELECT c.oid::int8 AS relid,
       pg_table_size(c.oid) AS size_bytes
  FROM pg_class c
 WHERE c.oid = ANY (%(relids)s::oid[])
