-- Run inside the database. The guide's PostgreSQL 15/16 step. Needed on 15: PUBLIC lost CREATE on schema
-- public and the schema belongs to pg_database_owner, whose rights the NOINHERIT owner does not inherit
-- there. On 16 the owner gets pg_database_owner's rights whatever its INHERIT attribute, and before 15
-- PUBLIC may create in public, so it is redundant there but harmless: qrd grants it on every version for
-- one end state that does not depend on those rules.
GRANT ALL ON SCHEMA public TO :"role";
