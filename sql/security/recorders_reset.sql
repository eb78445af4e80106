-- The recorders back to the session's defaults: only those switched off above (a role may not touch the
-- others, see recorders_off.sql).
SELECT set_config(name, reset_val, false)
  FROM pg_settings
 WHERE name IN ('log_statement', 'log_min_duration_statement', 'log_min_duration_sample', 'log_min_error_statement',
                'log_transaction_sample_rate', 'pg_stat_statements.track_utility', 'pgaudit.log')
   AND setting IS DISTINCT FROM reset_val;
