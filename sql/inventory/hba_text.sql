-- The text of pg_hba.conf as the server has it on disk (superusers only), so checks can tell which line a
-- Qlik node would match even when qrd runs on another machine.
SELECT pg_read_file(current_setting('hba_file')) AS hba
