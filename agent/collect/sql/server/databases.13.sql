-- server/databases: the databases pgradar may visit. Same on 13 to 18.
SELECT datname
  FROM pg_database
 WHERE datallowconn AND NOT datistemplate
 ORDER BY datname
