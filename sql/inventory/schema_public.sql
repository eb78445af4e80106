-- In the current database: the public schema's owner and privileges, and what the repository role ($1)
-- can really do there. has_schema_privilege() applies the server's own membership rules: on PostgreSQL 15
-- the public schema belongs to pg_database_owner, whose rights a NOINHERIT owner does not get (16 changed
-- that), which is why the guide's 15/16 section grants them explicitly. $2: whether the role exists (the
-- functions error otherwise).
SELECT pg_get_userbyid(n.nspowner)::text AS owner,
       n.nspacl IS NULL AS acl_is_default,
       CASE WHEN $2::bool THEN has_schema_privilege($1::name, n.oid, 'USAGE') END AS role_usage,
       CASE WHEN $2::bool THEN has_schema_privilege($1::name, n.oid, 'CREATE') END AS role_create,
       coalesce((SELECT array_agg(a.privilege_type::text ORDER BY a.privilege_type)
                   FROM aclexplode(n.nspacl) a
                  WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1::name)), '{}') AS role_explicit,
       coalesce((SELECT array_agg(coalesce(pg_get_userbyid(nullif(a.grantee, 0))::text, 'PUBLIC')
                                  || '=' || a.privilege_type ORDER BY a.grantee, a.privilege_type)
                   FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a), '{}') AS acl
  FROM pg_namespace n
 WHERE n.nspname = 'public'
