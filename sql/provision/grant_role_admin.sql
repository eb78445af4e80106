-- PostgreSQL 16, an admin that is no superuser: the role granted to it so that it may SET ROLE to the role
-- (creating databases owned by it needs that) and use its privileges (granting on those databases needs
-- that). The membership its CREATE ROLE gave it carries ADMIN OPTION only (createrole_self_grant aside).
GRANT :"role" TO :"member" WITH INHERIT TRUE, SET TRUE;
