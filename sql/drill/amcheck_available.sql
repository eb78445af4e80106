-- Whether the server can check a scratch database with pg_amcheck (the amcheck extension is in contrib),
-- and whether this session may create it there: amcheck is no trusted extension, so only a superuser may
-- (a managed server's admin may not: its drills run without pg_amcheck, and say so).
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck') AS available,
       coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) AS superuser
