-- The standbys' role: it logs in and streams WAL, nothing else (its password is set apart, as a verifier
-- computed by qrd, with the session's statement logging off).
CREATE ROLE :"role" WITH LOGIN REPLICATION;
