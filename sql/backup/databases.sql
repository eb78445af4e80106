-- The databases of the server with their owner, encoding and size (to plan a backup and its disk space).
SELECT d.datname AS name,
       pg_get_userbyid(d.datdba) AS owner,
       pg_encoding_to_char(d.encoding) AS encoding,
       pg_database_size(d.oid) AS bytes
  FROM pg_database d
 WHERE NOT d.datistemplate AND d.datallowconn
 ORDER BY d.datname
