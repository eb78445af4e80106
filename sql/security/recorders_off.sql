-- Every place the statement (and so the verifier) could be recorded is switched off for this session,
-- where the server has it: statement and duration logging, sampled logging (13+), the statement printed
-- with an error (log_min_error_statement), pg_stat_statements' utility tracking, and pgaudit.
SELECT set_config(name, CASE name
                          WHEN 'log_statement' THEN 'none'
                          WHEN 'log_min_error_statement' THEN 'panic'
                          WHEN 'log_transaction_sample_rate' THEN '0'
                          WHEN 'pg_stat_statements.track_utility' THEN 'off'
                          WHEN 'pgaudit.log' THEN 'none'
                          ELSE '-1' END, false)
  FROM pg_settings
 WHERE name IN ('log_statement', 'log_min_duration_statement', 'log_min_duration_sample', 'log_min_error_statement',
                'log_transaction_sample_rate', 'pg_stat_statements.track_utility', 'pgaudit.log');
