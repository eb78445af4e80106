-- All rows of one of QSR's site tables as JSON objects, whatever columns this Qlik release has. Asked only
-- after table_exists.sql said the table is there: an error would end the dump's snapshot transaction.
SELECT to_jsonb(t)::text AS row FROM public.:"table" t
