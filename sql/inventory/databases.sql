-- The Qlik databases that exist ($1: their names), with encoding, owner and whether their ACL is still
-- the default (NULL datacl).
SELECT d.datname::text AS name,
       pg_encoding_to_char(d.encoding) AS encoding,
       pg_get_userbyid(d.datdba)::text AS owner,
       d.datallowconn AS allow_conn,
       d.datacl IS NULL AS acl_is_default
  FROM pg_database d
 WHERE d.datname = ANY ($1)
 ORDER BY d.datname
