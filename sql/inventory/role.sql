-- The repository role ($1) and whether the connecting user ($2) was granted it explicitly
-- (a superuser passes every pg_has_role() test, so pg_auth_members is asked directly). For a connecting
-- user who is no superuser: whether it may act as the role (SET ROLE to it — 16 grants that per membership,
-- before 16 every membership allows it — and has its privileges, so it can create databases owned by it and
-- grant on them) and whether it holds ADMIN OPTION on it (16: what altering the role needs).
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
                WHERE m.roleid = r.oid AND u.rolname = $2) AS granted_to_member,
       pg_has_role(r.oid, 'USAGE')
         AND pg_has_role(r.oid, CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)
         AS acts_as,
       pg_has_role(r.oid, 'MEMBER WITH ADMIN OPTION') AS admin_option
  FROM pg_roles r
 WHERE r.rolname = $1
