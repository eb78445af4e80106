-- The central node's new host name, as the repository's own `-bootstrap -restorehostname` would set it:
-- the central "ServerNodeConfigurations" row and the "LocalConfigs" rows that name the old host (compared
-- without case: Windows host names are not case-sensitive). One transaction; statements sent one by one.
UPDATE public."ServerNodeConfigurations" SET "HostName" = :'new'
 WHERE "IsCentral" AND lower("HostName") = lower(:'old');
UPDATE public."LocalConfigs" SET "HostName" = :'new'
 WHERE lower("HostName") = lower(:'old');
