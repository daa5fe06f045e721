-- What each probe has seen over time, kept up to date at ingest (never recomputed from the
-- reports): sites, hosts and their open ports as intervals, a change feed, and WAN samples,
-- raw and rolled up. Times are Unix milliseconds (UTC).

CREATE TABLE sites (
    name          TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO sites (name, first_seen_ms) SELECT site, min(first_seen_ms) FROM probes GROUP BY site;

-- The interval the probe declares in its reports (schema v3); status is judged against it.
ALTER TABLE probes ADD COLUMN interval_ms INTEGER;
-- Generation time of the newest report applied to the history below. Older reports that
-- arrive late are stored but do not rewrite history.
ALTER TABLE probes ADD COLUMN history_ms INTEGER;
-- Highest sequence number whose report retention has deleted: a copy of it arriving again
-- is a duplicate, not a new report.
ALTER TABLE probes ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0;

CREATE INDEX reports_by_time ON reports (probe_id, generated_ms);

-- A host as one probe sees it. Two probes at one site scanning the same address each keep
-- their own history of it.
CREATE TABLE hosts (
    host_id       INTEGER PRIMARY KEY,
    probe_id      TEXT NOT NULL REFERENCES probes (probe_id),
    address       TEXT NOT NULL,
    -- The last name reverse DNS gave (kept when a later lookup fails).
    hostname      TEXT,
    -- The latest OS guess, as JSON: {"family", "confidence", "evidence": [...]}.
    os            TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    -- Last report that saw the host up, once it is down (while up: probes.history_ms).
    last_seen_ms  INTEGER,
    up            INTEGER NOT NULL CHECK (up IN (0, 1)),
    UNIQUE (probe_id, address)
) STRICT;

CREATE INDEX hosts_by_name ON hosts (hostname COLLATE NOCASE);

-- When a host was up: from `up_ms` (the first report that saw it) to `down_ms` (the first
-- that did not); `last_seen_ms` is the last report that did. Open while `down_ms` is NULL.
CREATE TABLE host_intervals (
    host_id      INTEGER NOT NULL REFERENCES hosts (host_id),
    up_ms        INTEGER NOT NULL,
    down_ms      INTEGER,
    last_seen_ms INTEGER,
    PRIMARY KEY (host_id, up_ms)
) STRICT, WITHOUT ROWID;

-- When a port was open, the same way. A host that goes down closes its ports' intervals.
CREATE TABLE port_intervals (
    host_id      INTEGER NOT NULL REFERENCES hosts (host_id),
    protocol     TEXT NOT NULL,
    port         INTEGER NOT NULL,
    opened_ms    INTEGER NOT NULL,
    closed_ms    INTEGER,
    last_seen_ms INTEGER,
    banner       TEXT,
    PRIMARY KEY (host_id, protocol, port, opened_ms)
) STRICT, WITHOUT ROWID;

CREATE INDEX open_ports ON port_intervals (host_id) WHERE closed_ms IS NULL;

-- Every start and end of an interval above, in the order ingest saw them: the change feed.
CREATE TABLE changes (
    change_id INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    host_id   INTEGER NOT NULL REFERENCES hosts (host_id),
    kind      TEXT NOT NULL CHECK (kind IN ('host_up', 'host_down', 'port_opened', 'port_closed')),
    protocol  TEXT,
    port      INTEGER,
    report_id TEXT NOT NULL
) STRICT;

CREATE INDEX changes_by_time ON changes (at_ms);

-- One WAN measurement of one report.
CREATE TABLE wan_samples (
    probe_id  TEXT NOT NULL REFERENCES probes (probe_id),
    target    TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    method    TEXT NOT NULL,
    sent      INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    min_ms    REAL,
    median_ms REAL,
    max_ms    REAL,
    -- Time before target: reads are a probe's time range, or its latest report's samples.
    PRIMARY KEY (probe_id, at_ms, target)
) STRICT, WITHOUT ROWID;

-- WAN samples rolled up per hour (span_s 3600) or day (86400): lowest, median of the medians,
-- highest, and the packets sent and received (loss = 1 - received / sent).
CREATE TABLE wan_rollups (
    probe_id  TEXT NOT NULL REFERENCES probes (probe_id),
    target    TEXT NOT NULL,
    span_s    INTEGER NOT NULL CHECK (span_s IN (3600, 86400)),
    start_ms  INTEGER NOT NULL,
    samples   INTEGER NOT NULL,
    sent      INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    min_ms    REAL,
    median_ms REAL,
    max_ms    REAL,
    PRIMARY KEY (probe_id, span_s, start_ms, target)
) STRICT, WITHOUT ROWID;
