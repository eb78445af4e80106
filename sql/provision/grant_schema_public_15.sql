-- Run inside the database. PostgreSQL 15, an admin that is no superuser: schema public belongs to
-- pg_database_owner, and only a role with pg_database_owner's rights may grant on it. The NOINHERIT database
-- owner does not get them on 15 (16 changed that), so neither does the admin through it: for this one
-- transaction the role inherits, the guide's grant is made (by pg_database_owner, as a superuser's would
-- be), and the role is NOINHERIT again before anyone else can see the change.
BEGIN;
ALTER ROLE :"role" INHERIT;
GRANT ALL ON SCHEMA public TO :"role";
ALTER ROLE :"role" NOINHERIT;
COMMIT;
