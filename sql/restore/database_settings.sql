-- `ALTER DATABASE … SET` and `ALTER ROLE … IN DATABASE … SET` values of the database being replaced.
SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole)::text END AS role,
       unnest(s.setconfig) AS setting
  FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase
 WHERE d.datname = $1
