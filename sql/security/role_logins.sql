-- The named roles ($1) and whether they may log in, from pg_roles (readable by anyone; its rolpassword is
-- always '********'): for a session that may not read pg_authid.
SELECT rolname::text AS name, rolcanlogin AS can_login
  FROM pg_roles
 WHERE rolname = ANY($1)
