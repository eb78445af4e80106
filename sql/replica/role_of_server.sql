-- Primary or standby, and the timeline of the WAL being written or replayed now (the first 8 hex digits
-- of the WAL file name; pg_control's timeline lags until the next checkpoint).
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline
