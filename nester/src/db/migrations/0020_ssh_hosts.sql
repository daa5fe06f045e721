-- The SSH CA's other half: host certificates signed for harvester boxes, keys revoked outright,
-- what each harvester holds of the SSH trust, and the trust's version.

-- Host certificates, one row per certificate signed; the newest of a probe is reused while
-- its key, names and CA are unchanged and it is under two thirds through its life.
CREATE TABLE ssh_host_certificates (
    serial          INTEGER PRIMARY KEY,
    probe_id        TEXT NOT NULL,
    site            TEXT NOT NULL,
    -- The box's host key, OpenSSH format, and its SHA256 fingerprint.
    public_key      TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    -- Space-separated names and addresses.
    principals      TEXT NOT NULL,
    valid_after_ms  INTEGER NOT NULL,
    valid_before_ms INTEGER NOT NULL,
    ca              TEXT NOT NULL,
    certificate     TEXT NOT NULL,
    issued_ms       INTEGER NOT NULL
) STRICT;
CREATE INDEX ssh_host_certificates_probe ON ssh_host_certificates (probe_id, issued_ms);

-- Keys revoked outright: every certificate for them refused, none issued again.
CREATE TABLE ssh_revoked_keys (
    -- SHA256 fingerprint of the plain key.
    fingerprint TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    revoked_ms  INTEGER NOT NULL,
    revoked_by  TEXT NOT NULL
) STRICT;

-- What each harvester last fetched of the SSH trust, and the version it said it holds.
CREATE TABLE ssh_trust_holders (
    probe_id       TEXT PRIMARY KEY,
    site           TEXT NOT NULL,
    served_version INTEGER NOT NULL,
    held_version   INTEGER,
    seen_ms        INTEGER NOT NULL,
    -- 1 when it said it holds less than it was given before: it did not install it.
    behind         INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Rises with every change of the SSH trust: a revocation, a CA rotation's start or end.
CREATE TABLE ssh_trust_version (
    only    INTEGER PRIMARY KEY CHECK (only = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO ssh_trust_version (only, version)
    SELECT 1, count(*) FROM ssh_certificates WHERE revoked_ms IS NOT NULL;
