-- Signed reports stored in parts (see db/signed.rs): the protected header, which carries the
-- certificate chain and is the same for every report of one certificate, is kept once per
-- probe and certificate; the payload is kept decoded and compressed (`jws_encoding` 'parts').
-- Older rows keep their encoding ('identity' or 'lz4') and read back as before.
CREATE TABLE jws_headers (
    header_id      INTEGER PRIMARY KEY,
    probe_id       TEXT NOT NULL,
    -- SHA-256 of the header segment.
    digest         BLOB NOT NULL,
    header         TEXT NOT NULL,
    -- The lowest sequence number stored with it: retention looks for the reports still
    -- using it from there, without an index on `reports.jws_header_id`.
    first_sequence INTEGER NOT NULL,
    UNIQUE (probe_id, digest)
) STRICT;

-- No REFERENCES: without an index on this column (one more place to write per report),
-- SQLite would scan every report to check each header deleted. Retention deletes a header
-- only once no report of its probe from its first sequence on uses it.
ALTER TABLE reports ADD COLUMN jws_header_id INTEGER;
ALTER TABLE reports ADD COLUMN jws_signature TEXT;

-- Every insert writes to each index of `reports` at the probe's own place, a page of its
-- own once the table is large. Two go: `reports_by_probe` has the columns of
-- UNIQUE (probe_id, sequence), which serves its queries, and `reports_by_time` served time
-- windows that the unique index serves too, filtering a probe's few thousand reports.
DROP INDEX reports_by_probe;
DROP INDEX reports_by_time;
