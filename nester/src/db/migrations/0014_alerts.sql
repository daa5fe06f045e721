-- Alerts: a condition worth a person's attention, one row per occurrence of a condition
-- (`key`: rule and subject). While it is not resolved, the same condition again updates the
-- row (`last_ms`, `count`); it never makes a second one (the partial unique index).
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('firing', 'acknowledged', 'resolved')),
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    resolved_ms INTEGER
) STRICT;
CREATE UNIQUE INDEX alerts_open ON alerts (key) WHERE state != 'resolved';
CREATE INDEX alerts_last ON alerts (last_ms);
