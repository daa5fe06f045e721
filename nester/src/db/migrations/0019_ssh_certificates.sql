-- SSH user certificates issued by the nester's SSH CA, and their revocation (compiled into
-- the KRL harvesters install for sshd).
CREATE TABLE ssh_certificates (
    -- Random, never 0 (OpenSSH's "no serial").
    serial          INTEGER PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES users (user_id),
    key_id          TEXT NOT NULL,
    -- Space-separated.
    principals      TEXT NOT NULL,
    valid_after_ms  INTEGER NOT NULL,
    valid_before_ms INTEGER NOT NULL,
    -- The certified key, OpenSSH format, and its SHA256 fingerprint.
    public_key      TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    -- The CA that signed it (SHA256 fingerprint).
    ca              TEXT NOT NULL,
    source_ip       TEXT,
    issued_ms       INTEGER NOT NULL,
    revoked_ms      INTEGER,
    revoked_by      TEXT
) STRICT;
CREATE INDEX ssh_certificates_user ON ssh_certificates (user_id, issued_ms);
CREATE INDEX ssh_certificates_revoked ON ssh_certificates (revoked_ms) WHERE revoked_ms IS NOT NULL;
