-- indexes/sizes: on-disk size of the given indexes (%(indexrelids)s),
-- pg_relation_size of the main fork as indexes/indexes reads it, asked only
-- for the indexes whose size stamp (indexes/counters) is new. Same on 13 to
-- 18. An index dropped since its stamp was read is not returned.
SELECT c.oid::int8 AS indexrelid,
       pg_relation_size(c.oid) AS size_bytes
  FROM pg_class c
 WHERE c.oid = ANY (%(indexrelids)s::oid[])
