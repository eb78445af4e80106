-- Errors in pg_hba.conf as it is on disk now (the view parses the file afresh, loaded or not). to_jsonb
-- reads file_name, which only PostgreSQL 16 has (included files), without a per-version query.
SELECT r.line_number, r.error, to_jsonb(r) ->> 'file_name' AS file_name
  FROM pg_hba_file_rules r
 WHERE r.error IS NOT NULL
 ORDER BY r.line_number
