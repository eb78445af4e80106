-- Whether this session may read the server certificate through the server (superusers, or a role granted
-- EXECUTE on both functions). Asked on its own first: the executor checks a function's EXECUTE privilege
-- when it sets up the statement, before any CASE is evaluated, so read_cert.sql run without it leaves an
-- ERROR in the server log (a managed server's admin on every `qrd check`).
SELECT has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
       AND has_function_privilege('pg_catalog.pg_read_binary_file(text)', 'EXECUTE') AS may_read
