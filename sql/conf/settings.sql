-- What the server knows about the settings $1 (text[]): type, unit, range, allowed values, whether a
-- change needs a restart, and where the current value comes from. Names are case-insensitive, as the
-- server treats them (TimeZone, DateStyle): they come back lower-cased, like qrd's canonical names.
SELECT lower(name) AS name, setting, unit, vartype, min_val, max_val, COALESCE(enumvals, '{}') AS enumvals, context,
       pending_restart, source, sourcefile, sourceline
  FROM pg_settings
 WHERE lower(name) = ANY($1::text[])
