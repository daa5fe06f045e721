-- Probes, their reports (with the raw signed bytes) and what each report found.
-- Times are Unix milliseconds (UTC).

CREATE TABLE probes (
    probe_id          TEXT PRIMARY KEY,
    site              TEXT NOT NULL,
    harvester_version TEXT NOT NULL,
    first_seen_ms     INTEGER NOT NULL,
    last_report_id    TEXT,
    last_report_ms    INTEGER
) STRICT;

CREATE TABLE reports (
    report_id     TEXT PRIMARY KEY,
    probe_id      TEXT NOT NULL REFERENCES probes (probe_id),
    sequence      INTEGER NOT NULL,
    site          TEXT NOT NULL,
    generated_ms  INTEGER NOT NULL,
    received_ms   INTEGER NOT NULL,
    signer_kid    TEXT NOT NULL,
    hosts_up      INTEGER NOT NULL,
    open_ports    INTEGER NOT NULL,
    -- The JWS exactly as received: the payload is served from here, never re-serialised.
    jws           BLOB NOT NULL,
    UNIQUE (probe_id, sequence)
) STRICT;

CREATE INDEX reports_by_probe ON reports (probe_id, sequence DESC);

CREATE TABLE report_hosts (
    report_id TEXT NOT NULL REFERENCES reports (report_id) ON DELETE CASCADE,
    address   TEXT NOT NULL,
    hostname  TEXT,
    state     TEXT NOT NULL,
    PRIMARY KEY (report_id, address)
) STRICT, WITHOUT ROWID;

CREATE TABLE report_ports (
    report_id TEXT NOT NULL,
    address   TEXT NOT NULL,
    protocol  TEXT NOT NULL,
    port      INTEGER NOT NULL,
    state     TEXT NOT NULL,
    banner    TEXT,
    PRIMARY KEY (report_id, address, protocol, port),
    FOREIGN KEY (report_id, address) REFERENCES report_hosts (report_id, address) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
