-- Where the server sees this session come from (NULL through a unix socket): the client address pg_hba.conf
-- decided on, so qrd can say which rule a verification login went through.
SELECT host(inet_client_addr()) AS addr
