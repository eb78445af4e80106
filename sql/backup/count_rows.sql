-- The rows of one table (names through the quoting helper: Qlik's tables are quoted CamelCase).
SELECT count(*) AS rows FROM :"schema".:"table"
