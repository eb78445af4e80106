-- This session's own TLS, as the server sees it.
SELECT ssl, version, cipher, bits
  FROM pg_stat_ssl
 WHERE pid = pg_backend_pid()
