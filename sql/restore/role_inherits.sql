-- Whether role $1 exists, and whether it inherits (rolinherit).
SELECT rolinherit AS inherit FROM pg_roles WHERE rolname = $1
