-- Errors in postgresql.conf and the files it includes as they are on disk now (the view reads them
-- afresh): syntax errors, unknown names, invalid values. "setting could not be applied" only means the
-- setting waits for a restart (its context is postmaster), which is no error in the file.
SELECT sourcefile, sourceline, name, error
  FROM pg_file_settings
 WHERE error IS NOT NULL
   AND error <> 'setting could not be applied'
 ORDER BY seqno
