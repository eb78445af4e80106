-- Of the roles $1, those this session may not act as: SET ROLE to it (16 grants that per membership; before
-- 16 every membership allows it) and use its privileges. An admin that is no superuser needs both for the
-- roles that own what it restores: CREATE DATABASE … OWNER and pg_restore's ALTER … OWNER TO.
SELECT r.rolname::text AS name, r.rolinherit AS inherit
  FROM pg_roles r
 WHERE r.rolname = ANY($1)
   AND NOT (pg_has_role(r.oid, 'USAGE')
            AND pg_has_role(r.oid, CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END))
 ORDER BY r.rolname
