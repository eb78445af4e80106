-- One half of a `--clean` swap; both renames of every replaced database run in one transaction, so the
-- server holds either all the old databases under their names or all the restored ones.
ALTER DATABASE :"from" RENAME TO :"to";
