-- The roles that exist on the target server: a restore leaves them as they are.
SELECT rolname AS name FROM pg_roles
