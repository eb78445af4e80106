-- Where the server keeps its configuration (superuser or pg_read_all_settings to see the paths).
SELECT current_setting('data_directory') AS data_directory,
       current_setting('config_file') AS config_file,
       current_setting('hba_file') AS hba_file,
       current_setting('server_version_num')::int AS version_num,
       current_setting('password_encryption') AS password_encryption,
       current_setting('ssl') = 'on' AS ssl
