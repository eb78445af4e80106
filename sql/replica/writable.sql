-- Proof that the server accepts writes: assigning a transaction id fails during recovery.
SELECT txid_current()::text AS xid
