-- Which CA issued each probe's current certificate (SHA-256 of the CA certificate), so a CA
-- rotation can tell which probes have moved to the new CA. NULL: issued before this was kept.
ALTER TABLE probes ADD COLUMN cert_issuer TEXT;
