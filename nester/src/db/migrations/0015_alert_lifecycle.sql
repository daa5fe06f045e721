-- Alerts about a site or a probe say so (filters, grouping, badges); an acknowledgement
-- (who, why, until when: it expires and the alert fires again) is kept on the alert.
ALTER TABLE alerts ADD COLUMN site TEXT;
ALTER TABLE alerts ADD COLUMN probe_id TEXT;
ALTER TABLE alerts ADD COLUMN ack_by TEXT;
ALTER TABLE alerts ADD COLUMN ack_comment TEXT;
ALTER TABLE alerts ADD COLUMN ack_ms INTEGER;
ALTER TABLE alerts ADD COLUMN ack_until_ms INTEGER;
CREATE INDEX alerts_by_state ON alerts (state, site) WHERE state != 'resolved';

-- Silences: alerts matching every given field (NULL: any) are not notified until
-- `expires_ms`; they are still raised and shown.
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    rule TEXT,
    site TEXT,
    subject TEXT,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    -- Lifted by hand, or noted as expired (audited either way).
    ended_ms INTEGER
) STRICT;

-- Where alert evaluation has got to: the last change of the feed it read, and per probe the
-- missing reports it last alerted on.
CREATE TABLE alert_cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
