-- On a primary: each physical slot, whether a standby uses it, and the WAL it holds back.
SELECT slot_name::text AS name, active,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
  FROM pg_replication_slots
 WHERE slot_type = 'physical'
 ORDER BY 1
