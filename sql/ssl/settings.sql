-- The server's TLS settings as it runs now (pg_settings): on/off, the files, the protocol floor, the ciphers.
-- data_directory is visible to superusers and pg_read_all_settings only; it anchors relative file names.
SELECT name, setting
  FROM pg_settings
 WHERE name IN ('ssl', 'ssl_cert_file', 'ssl_key_file', 'ssl_ca_file', 'ssl_crl_file',
                'ssl_min_protocol_version', 'ssl_max_protocol_version', 'ssl_ciphers',
                'ssl_prefer_server_ciphers', 'ssl_passphrase_command', 'data_directory')
