-- A physical slot for one standby: the primary keeps the WAL it has not received yet.
SELECT pg_create_physical_replication_slot(:'slot');
