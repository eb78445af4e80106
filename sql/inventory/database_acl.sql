-- The databases' privileges ($1: their names) as rows; a NULL datacl is expanded to the built-in default
-- so "who can do what" is always complete. Grantee 0 is PUBLIC.
SELECT d.datname::text AS database,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       pg_get_userbyid(a.grantor)::text AS grantor,
       a.privilege_type AS privilege,
       a.is_grantable AS grantable
  FROM pg_database d
 CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE d.datname = ANY ($1)
 ORDER BY 1, 2 NULLS FIRST, 4
