SELECT set_config(name, reset_val, false)
  FROM pg_settings
 WHERE name IN ('log_statement', 'log_min_duration_statement', 'log_min_duration_sample', 'log_min_error_statement',
                'log_transaction_sample_rate', 'pg_stat_statements.track_utility', 'pgaudit.log');
