-- A counter that every change to `hosts` or `port_intervals` moves on, from any connection:
-- the writer keeps each probe's open hosts and ports in memory (db/history.rs) and compares
-- this counter with the value its memory matches, to learn of changes made behind it (the
-- CLI, a repair by hand) without forgetting everything after each unrelated write.
CREATE TABLE history_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO history_version (id, n) VALUES (1, 0);

CREATE TRIGGER hosts_inserted AFTER INSERT ON hosts
BEGIN UPDATE history_version SET n = n + 1; END;
CREATE TRIGGER hosts_updated AFTER UPDATE ON hosts
BEGIN UPDATE history_version SET n = n + 1; END;
CREATE TRIGGER hosts_deleted AFTER DELETE ON hosts
BEGIN UPDATE history_version SET n = n + 1; END;
CREATE TRIGGER port_intervals_inserted AFTER INSERT ON port_intervals
BEGIN UPDATE history_version SET n = n + 1; END;
CREATE TRIGGER port_intervals_updated AFTER UPDATE ON port_intervals
BEGIN UPDATE history_version SET n = n + 1; END;
CREATE TRIGGER port_intervals_deleted AFTER DELETE ON port_intervals
BEGIN UPDATE history_version SET n = n + 1; END;
