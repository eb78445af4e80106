-- A database's privileges and settings, which pg_dump does not carry without --create: a `--clean` restore
-- gives the restored database those of the database it replaces (a site that revoked CONNECT from PUBLIC
-- keeps it revoked). Grantee NULL is PUBLIC; acl_default means the built-in defaults (no GRANT to copy).
SELECT d.datacl IS NULL AS acl_default,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       a.privilege_type, a.is_grantable
  FROM pg_database d
  LEFT JOIN LATERAL aclexplode(d.datacl) a ON true
 WHERE d.datname = $1
