GRANT CREATE ON DATABASE :"database" TO :"role";
