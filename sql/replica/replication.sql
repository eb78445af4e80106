-- On a primary: each standby connected, with its lag (bytes behind the primary's current WAL; seconds as
-- the standby last reported replaying).
SELECT coalesce(nullif(application_name, ''), '?') AS name,
       host(client_addr) AS address,
       state,
       sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
       extract(epoch FROM replay_lag)::float8 AS lag_seconds
  FROM pg_stat_replication
 ORDER BY 1
