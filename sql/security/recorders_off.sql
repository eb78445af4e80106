-- Every place the statement (and so the verifier) could be recorded is switched off for this session,
-- where the server has it: statement and duration logging, sampled logging (13+), the statement printed
-- with an error (log_min_error_statement), pg_stat_statements' utility tracking, and pgaudit. Most of them
-- only a superuser may change (or a role granted SET on them, 15+): a managed server's admin role may not,
-- so each is tried on its own and one this role may not change is left as it is (qrd says which).
DO $recorders$
DECLARE
  s record;
BEGIN
  FOR s IN SELECT name, CASE name
                          WHEN 'log_statement' THEN 'none'
                          WHEN 'log_min_error_statement' THEN 'panic'
                          WHEN 'log_transaction_sample_rate' THEN '0'
                          WHEN 'pg_stat_statements.track_utility' THEN 'off'
                          WHEN 'pgaudit.log' THEN 'none'
                          ELSE '-1' END AS off
             FROM pg_settings
            WHERE name IN ('log_statement', 'log_min_duration_statement', 'log_min_duration_sample',
                           'log_min_error_statement', 'log_transaction_sample_rate',
                           'pg_stat_statements.track_utility', 'pgaudit.log')
  LOOP
    BEGIN
      PERFORM set_config(s.name, s.off, false);
    EXCEPTION WHEN insufficient_privilege THEN
      NULL;
    END;
  END LOOP;
END
$recorders$;
