-- The server as a bundle's manifest records it, and whether this session may read pg_authid (the roles'
-- password verifiers): a managed server's admin may not, and its roles are then dumped without them.
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS reads_authid
