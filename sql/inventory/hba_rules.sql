-- The rules of pg_hba.conf and of the files it includes, as the server parses them from disk now
-- (superusers only), in the order it reads them. PostgreSQL 16 names each rule's file (file_name): an
-- included file's rules count like the main file's. to_jsonb reads file_name without a per-version query.
SELECT coalesce(to_jsonb(r) ->> 'file_name', current_setting('hba_file')) AS file_name,
       coalesce(to_jsonb(r) ->> 'file_name', current_setting('hba_file')) = current_setting('hba_file')
           AS in_main_file,
       r.line_number,
       r.type,
       r.auth_method
  FROM pg_hba_file_rules r
