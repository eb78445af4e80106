-- Give the existing repository role the guide's attributes, as an admin that is no superuser (a managed
-- server's: Amazon RDS, Azure, Cloud SQL). Only a superuser may name SUPERUSER or REPLICATION at all, even
-- to switch them off (qrd refuses a role that has either): the rest is the guide's list.
ALTER ROLE :"role" WITH LOGIN NOINHERIT NOCREATEDB NOCREATEROLE VALID UNTIL 'infinity';
