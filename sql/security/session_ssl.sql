-- Whether this session is encrypted (pg_stat_ssl), to explain the pg_hba.conf rule it met.
SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl
