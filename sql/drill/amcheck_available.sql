-- Whether the server can check a scratch database with pg_amcheck (the amcheck extension is in contrib).
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck') AS available
