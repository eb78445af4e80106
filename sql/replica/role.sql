-- The replication role as it is: whether it exists, may log in and may replicate.
SELECT rolcanlogin AS login, rolreplication AS replication FROM pg_roles WHERE rolname = $1
