-- Whether a database of this name exists on the target.
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS present
