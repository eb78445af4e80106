-- The repository role ($1) and whether the connecting user ($2) was granted it explicitly
-- (a superuser passes every pg_has_role() test, so pg_auth_members is asked directly).
SELECT r.rolname::text AS name,
       r.rolcanlogin AS login,
       r.rolinherit AS inherit,
       r.rolsuper AS superuser,
       r.rolcreatedb AS createdb,
       r.rolcreaterole AS createrole,
       r.rolreplication AS replication,
       r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' AS never_expires,
       r.rolvaliduntil::text AS valid_until,
       COALESCE(r.rolvaliduntil < now(), false) AS expired,
       EXISTS (SELECT 1
                 FROM pg_auth_members m
                 JOIN pg_roles u ON u.oid = m.member
                WHERE m.roleid = r.oid AND u.rolname = $2) AS granted_to_member
  FROM pg_roles r
 WHERE r.rolname = $1
