-- explain/parameters: how many parameters the prepared statement takes.
SELECT coalesce(cardinality(parameter_types), 0) AS n
  FROM pg_prepared_statements
 WHERE name = 'pgradar_explain'
