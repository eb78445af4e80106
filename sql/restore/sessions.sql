-- Other sessions connected to the databases a `--clean` restore replaces: the swap needs none.
SELECT datname AS database, count(*) AS sessions,
       string_agg(DISTINCT coalesce(nullif(application_name, ''), usename::text, '?'), ', ') AS clients
  FROM pg_stat_activity
 WHERE datname = ANY($1) AND pid <> pg_backend_pid()
 GROUP BY datname
 ORDER BY datname
