-- `--clean --yes`: the other sessions of the databases being replaced are ended just before the swap.
SELECT count(pg_terminate_backend(pid)) AS terminated
  FROM pg_stat_activity
 WHERE datname = ANY($1) AND pid <> pg_backend_pid()
