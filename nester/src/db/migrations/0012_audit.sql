-- The audit log: every security-relevant change, hash-chained. Entry `seq` carries
-- SHA-256(hash of seq-1 || canonical entry); seq 1 chains from 32 zero bytes. Appended only
-- inside the transaction of the change it records (db/audit.rs), never updated or deleted.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    source_ip TEXT,
    details TEXT NOT NULL,
    hash BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
