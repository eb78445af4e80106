-- Set the repository role's password from a verifier computed by qrd (never the plaintext). Statement
-- logging is off for this session while it runs, so not even the verifier reaches the server log (psql and
-- qrd send each statement on its own, so the SETs apply before the ALTER is logged).
SET log_statement = 'none';
SET log_min_duration_statement = -1;
ALTER ROLE :"role" WITH PASSWORD :'verifier';
RESET log_min_duration_statement;
RESET log_statement;
