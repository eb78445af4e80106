-- The cluster's system identifier (tells two clusters with the same host and port apart); superusers
-- and pg_monitor may read it.
SELECT system_identifier::text AS id FROM pg_control_system()
