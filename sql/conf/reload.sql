-- Ask the postmaster to re-read postgresql.conf and pg_hba.conf (SIGHUP).
SELECT pg_reload_conf()
