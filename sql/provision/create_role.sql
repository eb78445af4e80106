-- Create the repository login role with the guide's attributes. The password is a verifier computed by
-- qrd (SCRAM-SHA-256, or md5 when password_encryption = md5), so the plaintext never reaches the server.
\ir ../security/recorders_off.sql
CREATE ROLE :"role" WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION VALID UNTIL 'infinity' PASSWORD :'verifier';
\ir ../security/recorders_reset.sql
