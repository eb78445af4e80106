-- Which of the tables a new-hostname restore changes exist in this QSR (Qlik's schema changes between
-- releases; qrd fails clearly rather than guess).
SELECT t AS "table", to_regclass('public.' || quote_ident(t)) IS NOT NULL AS present
  FROM unnest(ARRAY['ServerNodeConfigurations', 'LocalConfigs', 'ServiceClusterSettingsSharedPersistenceProperties']) AS t
