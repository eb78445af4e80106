-- Errors in postgresql.conf and the files it includes as they are on disk now (the view reads them
-- afresh): syntax errors, unknown names, invalid values.
SELECT sourcefile, sourceline, name, error
  FROM pg_file_settings
 WHERE error IS NOT NULL
 ORDER BY seqno
