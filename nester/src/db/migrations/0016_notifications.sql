-- Notifications: every alert that starts firing (or fires again) and every one that resolves
-- is an event; events are grouped per site into messages, one row per channel in a durable
-- outbox, delivered and retried from there (across restarts), each with its own key.
CREATE TABLE alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    kind TEXT NOT NULL CHECK (kind IN ('firing', 'resolved')),
    at_ms INTEGER NOT NULL,
    grouped_ms INTEGER
) STRICT;
CREATE INDEX alert_events_waiting ON alert_events (at_ms) WHERE grouped_ms IS NULL;

-- When the alert's firing was last notified (a resolution is notified only if it was), and
-- per key the last firing notified (a flapping condition notifies at most once an hour).
ALTER TABLE alerts ADD COLUMN notified_ms INTEGER;
CREATE TABLE alert_keys_notified (
    key TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    -- Sent with every attempt: a receiver that saw it already can drop the repeat.
    key TEXT NOT NULL UNIQUE,
    site TEXT,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    last_error TEXT
) STRICT;
CREATE INDEX notifications_due ON notifications (channel, next_ms) WHERE delivered_ms IS NULL;
