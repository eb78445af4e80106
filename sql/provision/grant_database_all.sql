GRANT ALL ON DATABASE :"database" TO :"grantee";
