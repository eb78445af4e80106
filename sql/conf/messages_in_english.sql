-- The server's messages untranslated for this session, so qrd can recognise them (superusers only; qrd
-- goes on without it).
SET lc_messages TO 'C'
