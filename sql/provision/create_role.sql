-- Create the repository login role with the guide's attributes. The password is a verifier computed by
-- qrd (SCRAM-SHA-256, or md5 when password_encryption = md5), so the plaintext never reaches the server;
-- statement logging is off for this session meanwhile, so the verifier stays out of the server log too.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
CREATE ROLE :"role" WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION VALID UNTIL 'infinity' PASSWORD :'verifier';
RESET log_min_duration_statement;
RESET log_statement;
