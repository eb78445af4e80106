-- Give the existing repository role the guide's attributes.
ALTER ROLE :"role" WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION VALID UNTIL 'infinity';
