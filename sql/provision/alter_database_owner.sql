-- Make the repository role the owner of an existing database (only with --fix-owner).
ALTER DATABASE :"database" OWNER TO :"role";
