-- sessions/relations: schema and name of the relations blocked sessions wait
-- on, resolved in their own database (pg_class is per database). Same on 13
-- to 18.
SELECT c.oid::int8 AS relid,
       n.nspname AS schema,
       c.relname AS relation
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = ANY(%(relids)s::oid[])
