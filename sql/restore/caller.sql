-- Who restores: a superuser, or an admin that is no superuser (a managed server's: Amazon RDS, Azure,
-- Cloud SQL), which restores with what it may do; the major (its rules differ) and password_encryption
-- (for a password set here).
SELECT current_user::text AS "user",
       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser,
       current_setting('server_version_num')::int AS version_num,
       current_setting('password_encryption') AS password_encryption
