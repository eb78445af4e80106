-- The server and the connecting user: version, the settings qrd reasons about, superuser or not, and
-- whether it may create roles and databases (a managed server's admin: CREATEROLE CREATEDB, no superuser).
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_setting('password_encryption') AS password_encryption,
       current_setting('ssl') AS ssl,
       current_setting('max_connections')::int AS max_connections,
       current_setting('listen_addresses') AS listen_addresses,
       current_setting('port')::int AS port,
       current_user::text AS current_user,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user) AS createrole,
       (SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user) AS createdb
