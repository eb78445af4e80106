-- Set the repository role's password from a verifier computed by qrd (never the plaintext).
ALTER ROLE :"role" WITH PASSWORD :'verifier';
