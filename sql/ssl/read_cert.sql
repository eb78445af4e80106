-- The server certificate as the server reads it: a relative ssl_cert_file is relative to the data
-- directory, as pg_read_file's own relative paths are. Run only where may_read_cert.sql says the functions
-- may be called (a superuser, or a grant); existence is checked first (CASE fixes the order) so that a
-- routine check never leaves an ERROR in the server log: ssl_cert_file may name a missing file while
-- ssl = off. Read as bytes: a PEM
-- export may carry non-UTF-8 attribute text (PKCS #12 friendlyName), which pg_read_file would refuse.
SELECT may_read,
       CASE WHEN file_exists THEN pg_read_binary_file(current_setting('ssl_cert_file')) END AS pem,
       coalesce(file_exists, false) AS file_exists
  FROM (SELECT may_read,
               CASE WHEN may_read
                    THEN (pg_stat_file(current_setting('ssl_cert_file'), true)).size IS NOT NULL END AS file_exists
          FROM (SELECT has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
                       AND has_function_privilege('pg_catalog.pg_read_binary_file(text)', 'EXECUTE') AS may_read
               ) AS r
       ) AS f
