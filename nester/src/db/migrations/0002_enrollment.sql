-- Enrollment tokens, the probe's certificate state, and lost-report accounting.

CREATE TABLE enrollment_tokens (
    token_id      TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    site          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    max_uses      INTEGER NOT NULL,
    uses          INTEGER NOT NULL DEFAULT 0,
    revoked_ms    INTEGER
) STRICT;

ALTER TABLE probes ADD COLUMN token_id TEXT;
ALTER TABLE probes ADD COLUMN cert_serial TEXT;
ALTER TABLE probes ADD COLUMN cert_expires_ms INTEGER;
ALTER TABLE probes ADD COLUMN revoked_ms INTEGER;
-- Reports the harvester says it could not produce or keep (spool full): its running total.
ALTER TABLE probes ADD COLUMN unsent_reports INTEGER NOT NULL DEFAULT 0;

-- Missing sequence numbers per probe, as inclusive ranges, kept up to date at ingest.
CREATE TABLE sequence_gaps (
    probe_id TEXT NOT NULL REFERENCES probes (probe_id),
    first    INTEGER NOT NULL,
    last     INTEGER NOT NULL,
    PRIMARY KEY (probe_id, first)
) STRICT, WITHOUT ROWID;
