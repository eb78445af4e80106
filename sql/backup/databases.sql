-- The databases of the server with their owner, encoding and size (to plan a backup and its disk space),
-- and whether this session has the owner's privileges (a superuser has everyone's; an admin that is no
-- superuser needs the owner granted to it to read what the owner's tables hold).
SELECT d.datname AS name,
       pg_get_userbyid(d.datdba) AS owner,
       pg_encoding_to_char(d.encoding) AS encoding,
       pg_database_size(d.oid) AS bytes,
       pg_has_role(d.datdba, 'USAGE') AS acts_as_owner
  FROM pg_database d
 WHERE NOT d.datistemplate AND d.datallowconn
 ORDER BY d.datname
