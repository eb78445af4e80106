-- Every role that can log in and its stored password verifier (superusers only), for the password
-- hash types `qrd check` and `qrd scram status` report. The verifier never leaves qrd's memory.
SELECT rolname::text AS name, rolpassword AS password
  FROM pg_authid
 WHERE rolcanlogin
 ORDER BY rolname
