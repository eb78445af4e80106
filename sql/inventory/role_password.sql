-- The stored verifier of the repository role ($1). pg_authid is readable by superusers only.
SELECT rolpassword FROM pg_authid WHERE rolname = $1
