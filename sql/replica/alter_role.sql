-- An existing role given what streaming needs.
ALTER ROLE :"role" WITH LOGIN REPLICATION;
