-- Every role and the roles it is directly a member of, for pg_hba's +group and samerole.
SELECT r.rolname::text AS role,
       ARRAY(SELECT g.rolname::text
               FROM pg_auth_members m
               JOIN pg_roles g ON g.oid = m.roleid
              WHERE m.member = r.oid) AS member_of
  FROM pg_roles r
