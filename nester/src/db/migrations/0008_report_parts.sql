-- Signed reports stored in parts (see db/signed.rs): the protected header, which carries the
-- certificate chain and is the same for every report of one certificate, is kept once; the
-- payload is kept decoded and compressed (`jws_encoding` 'parts'). Older rows keep their
-- encoding ('identity' or 'lz4') and read back as before.
CREATE TABLE jws_headers (
    header_id INTEGER PRIMARY KEY,
    -- SHA-256 of the header segment.
    digest    BLOB NOT NULL UNIQUE,
    header    TEXT NOT NULL
) STRICT;

ALTER TABLE reports ADD COLUMN jws_header_id INTEGER REFERENCES jws_headers (header_id);
ALTER TABLE reports ADD COLUMN jws_signature TEXT;

-- Retention deletes headers no report uses any more.
CREATE INDEX reports_by_header ON reports (jws_header_id) WHERE jws_header_id IS NOT NULL;

-- The same columns as UNIQUE (probe_id, sequence), which serves every query it served.
DROP INDEX reports_by_probe;
