-- Whether this session may read pg_authid, where the password verifiers are (superusers; a managed
-- server's admin may not).
SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS reads_authid
