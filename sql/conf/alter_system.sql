-- Set a parameter in postgresql.auto.conf (the server checks the value; a reload applies it unless it
-- needs a restart).
ALTER SYSTEM SET :"name" TO :'value';
