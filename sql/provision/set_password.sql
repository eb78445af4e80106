-- Set a role's password from a verifier computed by qrd (never the plaintext). Each statement is sent on
-- its own (psql does the same with a script), so the settings apply before the ALTER reaches any log.
\ir ../security/recorders_off.sql
ALTER ROLE :"role" WITH PASSWORD :'verifier';
\ir ../security/recorders_reset.sql
