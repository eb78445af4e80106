-- What a database's pg_dump archive leaves out without --create ($1: the database): its ACL as PostgreSQL
-- prints it (NULL: the built-in default), its owner (whose default that is), its connection limit, and the
-- `ALTER DATABASE … SET` (role NULL) and `ALTER ROLE … IN DATABASE … SET` values of pg_db_role_setting,
-- one row per role (one row with setconfig NULL when there are none). `qrd backup` records them in the
-- manifest; a restore reads them of the database it fills (and, with --clean, of the one it replaces).
SELECT d.datacl::text[] AS acl,
       pg_get_userbyid(d.datdba)::text AS owner,
       d.datconnlimit AS connection_limit,
       CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole)::text END AS role,
       s.setconfig
  FROM pg_database d
  LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid
 WHERE d.datname = $1
 ORDER BY s.setrole
