-- Run inside the database. Required on PostgreSQL 15+, where PUBLIC lost CREATE on schema public and the
-- schema belongs to pg_database_owner, whose rights the NOINHERIT repository role does not inherit.
-- Harmless before 15 (the guide's 15/16 section; qrd applies it on every version for one end state).
GRANT ALL ON SCHEMA public TO :"role";
