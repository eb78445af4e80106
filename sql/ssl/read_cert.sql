-- The server certificate as the server reads it (superuser or pg_read_server_files): a relative
-- ssl_cert_file is relative to the data directory, as pg_read_file's own relative paths are.
SELECT pg_read_file(current_setting('ssl_cert_file')) AS pem
