-- Has this session read postgresql.conf (with its includes and postgresql.auto.conf) afresh, as a reload
-- would, without applying anything: pg_file_settings parses the files and tries each value. A postmaster
-- setting whose file value differs from the running one is thereby marked pending_restart in this
-- session's pg_settings, also when the server itself has not reloaded since the file changed (edited with
-- --no-reload, or by hand). A separate statement, so that the marking happens before pg_settings is read.
SELECT count(*) AS settings FROM pg_file_settings
