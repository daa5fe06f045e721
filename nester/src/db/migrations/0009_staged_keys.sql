-- Ingest keeps its per-probe rows off the large probe-keyed B-trees (see db/staging.rs).
-- Once such a tree is large, each probe's newest entries sit on a leaf of their own, so a
-- group commit of N probes' reports rewrote N leaves of each: a year-old database wrote
-- 3.6 pages per report where an empty one wrote 1.5. New keys now go to small `_staged`
-- tables with the same keys (a few leaves, shared by a whole commit) and are folded into
-- the large ones, in key order, every thousand reports or so. Reads take both.

-- `reports` loses UNIQUE (probe_id, sequence), which only a rebuild can drop; the key moves
-- to `report_sequences`. An explicit `id` keeps the link stable across VACUUM.
CREATE TABLE reports_v9 (
    id            INTEGER PRIMARY KEY,
    report_id     TEXT NOT NULL UNIQUE,
    probe_id      TEXT NOT NULL REFERENCES probes (probe_id),
    sequence      INTEGER NOT NULL,
    site          TEXT NOT NULL,
    generated_ms  INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    signer_kid    TEXT NOT NULL,
    hosts_up      INTEGER NOT NULL,
    open_ports    INTEGER NOT NULL,
    -- The JWS exactly as received, in `jws_encoding` (see db/signed.rs).
    jws           BLOB NOT NULL,
    jws_encoding  TEXT NOT NULL DEFAULT 'identity',
    jws_header_id INTEGER,
    jws_signature TEXT
) STRICT;

INSERT INTO reports_v9 (id, report_id, probe_id, sequence, site, generated_ms, received_ms,
                        signer_kid, hosts_up, open_ports, jws, jws_encoding, jws_header_id,
                        jws_signature)
SELECT rowid, report_id, probe_id, sequence, site, generated_ms, received_ms, signer_kid,
       hosts_up, open_ports, jws, jws_encoding, jws_header_id, jws_signature
  FROM reports ORDER BY rowid;
DROP TABLE reports;
ALTER TABLE reports_v9 RENAME TO reports;

-- Each stored report by probe and sequence (unique), with its time for time windows.
CREATE TABLE report_sequences (
    probe_id     TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    generated_ms INTEGER NOT NULL,
    -- reports.id
    id           INTEGER NOT NULL,
    PRIMARY KEY (probe_id, sequence)
) STRICT, WITHOUT ROWID;

INSERT INTO report_sequences (probe_id, sequence, generated_ms, id)
SELECT probe_id, sequence, generated_ms, id FROM reports ORDER BY probe_id, sequence;

CREATE TABLE report_sequences_staged (
    probe_id     TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    generated_ms INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    PRIMARY KEY (probe_id, sequence)
) STRICT, WITHOUT ROWID;

CREATE TABLE wan_samples_staged (
    probe_id  TEXT NOT NULL,
    target    TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    method    TEXT NOT NULL,
    sent      INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    min_ms    REAL,
    median_ms REAL,
    max_ms    REAL,
    PRIMARY KEY (probe_id, at_ms, target)
) STRICT, WITHOUT ROWID;
