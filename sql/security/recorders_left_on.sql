-- After recorders_off.sql: the recorders this session could not switch off (settings a non-superuser may
-- not change), with their values, so qrd can say what may still reach the server's log.
SELECT name, setting
  FROM pg_settings
 WHERE (name = 'log_statement' AND setting IN ('ddl', 'mod', 'all'))
    OR (name IN ('log_min_duration_statement', 'log_min_duration_sample') AND setting <> '-1')
    OR (name = 'log_min_error_statement' AND setting <> 'panic')
    OR (name = 'log_transaction_sample_rate' AND setting <> '0')
    OR (name = 'pg_stat_statements.track_utility' AND setting = 'on')
    OR (name = 'pgaudit.log' AND setting NOT IN ('none', ''))
 ORDER BY name
