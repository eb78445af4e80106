-- Ends recovery on the standby this session is connected to, waiting up to 60 s (PostgreSQL 12+).
SELECT pg_promote(true, 60) AS promoted
