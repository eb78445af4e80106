-- When this session last loaded the configuration files: it changes once the postmaster has processed a
-- reload and passed it on, which is how qrd knows a reload is done.
SELECT pg_conf_load_time()::text AS loaded
