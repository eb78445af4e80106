-- Scratch databases an interrupted `--clean` restore left (never in service: their names end in
-- `~qrd-new-<time>`); the next `--clean` restore of the same database drops them.
SELECT datname AS name FROM pg_database
 WHERE left(datname, length($1) + 9) = $1 || '~qrd-new-'
 ORDER BY datname
