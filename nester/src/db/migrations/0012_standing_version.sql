-- A counter that every change to a probe's standing moves on (enrolled, revoked, its site,
-- removed), from any connection: the ingest listener keeps each connection's standing and
-- reads this one-row counter on every request instead of the probe's row, so a revocation by
-- `nester probe revoke` (another process) refuses the probe's very next request, on whatever
-- connection it comes. Reports update other columns of `probes` and leave it alone.
CREATE TABLE standing_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO standing_version (id, n) VALUES (1, 0);

CREATE TRIGGER probes_enrolled AFTER INSERT ON probes
BEGIN UPDATE standing_version SET n = n + 1; END;
CREATE TRIGGER probes_standing_changed AFTER UPDATE OF revoked_ms, site ON probes
BEGIN UPDATE standing_version SET n = n + 1; END;
CREATE TRIGGER probes_deleted AFTER DELETE ON probes
BEGIN UPDATE standing_version SET n = n + 1; END;
