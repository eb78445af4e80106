-- Errors in postgresql.conf and its includes as the server applies them (after a reload): like
-- file_errors.sql, plus values the server would not apply. pg_file_settings says "setting could not be
-- applied" both for an invalid value (log_timezone = 'Nowhere/Land', which only the server can judge) and
-- for a valid change of a postmaster setting that waits for a restart; only the second sets
-- pending_restart. Anything else that could not be applied would make the next restart fail.
SELECT f.sourcefile, f.sourceline, f.name, f.error
  FROM pg_file_settings f
  LEFT JOIN pg_settings s ON lower(s.name) = lower(f.name)
 WHERE f.error IS NOT NULL
   AND (f.error <> 'setting could not be applied'
        OR s.context IS DISTINCT FROM 'postmaster'
        OR NOT s.pending_restart)
 ORDER BY f.seqno
