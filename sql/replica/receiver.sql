-- On a standby: its WAL receiver, how far replay is behind what was received, and since when nothing was
-- replayed (seconds since the last replayed transaction's commit on the primary).
SELECT r.status,
       r.sender_host,
       r.sender_port,
       r.received_tli AS timeline,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_lag_bytes,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age_seconds
  FROM (SELECT 1) one
  LEFT JOIN pg_stat_wal_receiver r ON true
