-- The named roles: whether they exist and log in, and their stored verifier (superusers only), so qrd can
-- tell md5 from SCRAM and check a given password against the stored hash without sending it anywhere.
SELECT rolname::text AS name, rolcanlogin AS can_login, rolpassword AS password
  FROM pg_authid
 WHERE rolname = ANY($1)
