-- One shared persistence folder prefix replaced by another in every folder column (UNC paths often hold the
-- old host name: \\OLDHOST\QlikShare → \\NEWHOST\QlikShare). Compared without case, as Windows does.
UPDATE public."ServiceClusterSettingsSharedPersistenceProperties" SET
  "RootFolder" = CASE WHEN lower(left("RootFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("RootFolder", length(:'old') + 1) ELSE "RootFolder" END,
  "AppFolder" = CASE WHEN lower(left("AppFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("AppFolder", length(:'old') + 1) ELSE "AppFolder" END,
  "StaticContentRootFolder" = CASE WHEN lower(left("StaticContentRootFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("StaticContentRootFolder", length(:'old') + 1) ELSE "StaticContentRootFolder" END,
  "Connector32RootFolder" = CASE WHEN lower(left("Connector32RootFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("Connector32RootFolder", length(:'old') + 1) ELSE "Connector32RootFolder" END,
  "Connector64RootFolder" = CASE WHEN lower(left("Connector64RootFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("Connector64RootFolder", length(:'old') + 1) ELSE "Connector64RootFolder" END,
  "ArchivedLogsRootFolder" = CASE WHEN lower(left("ArchivedLogsRootFolder", length(:'old'))) = lower(:'old') THEN :'new' || substr("ArchivedLogsRootFolder", length(:'old') + 1) ELSE "ArchivedLogsRootFolder" END;
