-- One qrd provision at a time per server: a session-level advisory lock, released when qrd disconnects.
-- The key is arbitrary but fixed ('qrd' as a number).
SELECT pg_try_advisory_lock(7434852) AS locked
