-- Create the database as the guide's PostgreSQL 15/16 script does (UTF8 from template0, so the encoding
-- does not depend on template1), owned by the repository role from the start.
CREATE DATABASE :"database" WITH OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
