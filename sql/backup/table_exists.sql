-- Whether public."<table>" exists in this database (Qlik's schema changes between releases).
SELECT to_regclass(:'qualified') IS NOT NULL AS present
