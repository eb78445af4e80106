-- The physical replication slots that exist.
SELECT slot_name::text AS name FROM pg_replication_slots WHERE slot_type = 'physical'
